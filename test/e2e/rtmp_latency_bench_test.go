package e2e

import (
	"bytes"
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/sluice-media/sluice/internal/client"
)

// latencyUUID marks the SEI that carries an access unit's index in
// BenchmarkLatencyRTMPvsWHIP.
var latencyUUID = []byte("sluice-rtmp-lat1")

// latencySEI returns an SEI (user data unregistered) carrying n, in bytes
// without zeros (no emulation prevention needed).
func latencySEI(n uint32) []byte {
	sei := []byte{0x06, 0x05, byte(len(latencyUUID) + 5)}
	sei = append(sei, latencyUUID...)
	for i := 4; i >= 0; i-- {
		sei = append(sei, 0x80|byte(n>>(7*i))&0x7f)
	}
	return append(sei, 0x80)
}

// latencyIndex reads the index from an access unit's SEI.
func latencyIndex(au [][]byte) (uint32, bool) {
	for _, n := range au {
		if len(n) == 3+len(latencyUUID)+5+1 && n[0] == 0x06 && bytes.Equal(n[3:3+len(latencyUUID)], latencyUUID) {
			var v uint32
			for _, b := range n[3+len(latencyUUID) : 3+len(latencyUUID)+5] {
				v = v<<7 | uint32(b&0x7f)
			}
			return v, true
		}
	}
	return 0, false
}

// withSEI inserts the index SEI before the first slice.
func withSEI(au [][]byte, n uint32) [][]byte {
	out := make([][]byte, 0, len(au)+1)
	done := false
	for _, nalu := range au {
		t := h264.NALUType(nalu[0] & 0x1f)
		if !done && (t == h264.NALUTypeIDR || t == h264.NALUTypeNonIDR) {
			out = append(out, latencySEI(n))
			done = true
		}
		out = append(out, nalu)
	}
	return out
}

// BenchmarkLatencyRTMPvsWHIP is the server-added latency from a
// publisher's write to a WHEP viewer's complete access unit, over
// loopback, for an RTMP publisher (frames packetized by sluice) and a WHIP
// one (RTP relayed): one access unit per iteration at 25 fps, p50 and p99
// reported. Run with -benchtime=250x (10 s).
func BenchmarkLatencyRTMPvsWHIP(b *testing.B) {
	clip := loadClip(b)
	for _, proto := range []string{"rtmp", "whip"} {
		b.Run(proto, func(b *testing.B) {
			srv := startEdgeServer(b, nil)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute+time.Duration(b.N)*frameDuration)
			defer cancel()
			var write func(i int, au [][]byte) error
			switch proto {
			case "rtmp":
				u, _ := url.Parse("rtmp://" + srv.RTMPAddr().String() + "/live/lat")
				conn := &gortmplib.Client{URL: u, Publish: true}
				if err := conn.Initialize(ctx); err != nil {
					b.Fatal(err)
				}
				defer conn.Close()
				var sps, pps []byte
				for _, n := range clip[0] {
					switch h264.NALUType(n[0] & 0x1f) {
					case h264.NALUTypeSPS:
						sps = n
					case h264.NALUTypePPS:
						pps = n
					}
				}
				track := &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
				w := &gortmplib.Writer{Conn: conn, Tracks: []*gortmplib.Track{track}}
				if err := w.Initialize(); err != nil {
					b.Fatal(err)
				}
				write = func(i int, au [][]byte) error {
					pts := time.Duration(i) * frameDuration
					return w.WriteH264(track, pts, pts, au)
				}
			case "whip":
				pub, err := client.Publish(ctx, srv.base+"/whip/lat", client.PublishOptions{NoAudio: true})
				if err != nil {
					b.Fatal(err)
				}
				defer pub.Close()
				write = func(i int, au [][]byte) error { return pub.WriteH264(au, time.Duration(i)*frameDuration) }
			}
			// Until the viewer is there: 3 s of media at once (RTMP's
			// track analysis wants 2 s), not measured.
			const warm = 3 * clipGOP
			for i := range warm {
				if err := write(i, withSEI(clip[i%len(clip)], uint32(i))); err != nil {
					b.Fatal(err)
				}
			}
			waitStream(b, srv.Hub(), "lat", 10*time.Second)
			v, err := client.View(ctx, srv.base+"/whep/lat", client.ViewOptions{NoAudio: true})
			if err != nil {
				b.Fatal(err)
			}
			defer v.Close()

			var mu sync.Mutex
			sent := map[uint32]time.Time{}
			var lat []time.Duration
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					select {
					case au := <-v.AccessUnits():
						now := time.Now()
						if n, ok := latencyIndex(au.NALUs); ok {
							mu.Lock()
							if t0, ok := sent[n]; ok {
								lat = append(lat, now.Sub(t0))
							}
							mu.Unlock()
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			b.ResetTimer()
			tick := time.NewTicker(frameDuration)
			defer tick.Stop()
			for i := range b.N {
				<-tick.C
				n := uint32(warm + i)
				au := withSEI(clip[int(n)%len(clip)], n)
				mu.Lock()
				sent[n] = time.Now()
				mu.Unlock()
				if err := write(int(n), au); err != nil {
					b.Fatal(err)
				}
			}
			time.Sleep(200 * time.Millisecond) // the last units' flight
			b.StopTimer()
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			if len(lat) == 0 {
				b.Fatal("no access unit measured")
			}
			slices.Sort(lat)
			p := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
			b.ReportMetric(float64(len(lat))/float64(b.N), "measured-ratio")
		})
	}
}
