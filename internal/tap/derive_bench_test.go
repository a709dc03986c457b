//go:build unix

package tap

import (
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkTranscoders runs streams AAC-LC stereo 128 kbit/s streams,
// each with its AAC→Opus transcoder (stereo 128 kbit/s, the default
// complexity) demanded, and feeds them one second of audio at a time: the
// process's CPU time (the transcoders' goroutines, the hub, the frame
// writer) per second of audio per stream, and the cores that many live
// streams need.
func BenchmarkTranscoders(b *testing.B) {
	needTranscode(b)
	enc, err := transcode.NewFFmpegEncoder(2, 128000, transcode.DefaultAACOptions)
	if err != nil {
		b.Fatal(err)
	}
	var aus []transcode.AACFrame
	pcm := make([]float32, 2*transcode.SamplesPerFrame)
	for i := 0; i < 470; i++ { // 10 s
		for j := range transcode.SamplesPerFrame {
			t := float64(i*transcode.SamplesPerFrame+j) / 48000
			pcm[2*j] = float32(0.3*math.Sin(2*math.Pi*440*t) + 0.1*math.Sin(2*math.Pi*1320*t))
			pcm[2*j+1] = float32(0.3*math.Sin(2*math.Pi*660*t) + 0.1*math.Sin(2*math.Pi*2200*t))
		}
		if aus, err = enc.Encode(aus, pcm, int64(i*transcode.SamplesPerFrame)); err != nil {
			b.Fatal(err)
		}
	}
	asc, _ := enc.Config().Marshal()
	enc.Close()
	codec, err := ingest.AACCodec(asc)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 50} {
		b.Run(fmt.Sprintf("aac-stereo-%d-streams", n), func(b *testing.B) {
			x := NewTranscoders(TranscodersConfig{Opus: transcode.OpusConfig{Bitrate: 128000}})
			defer x.Close()
			h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second, MaxViewersPerStream: 10, Deriver: x})
			sts := make([]*hub.Stream, n)
			fts := make([]*ingest.FrameTrack, n)
			for i := range sts {
				stW, err := h.Publish(fmt.Sprint("s", i), hubtest.NopPublisher{}, []media.Codec{codec})
				if err != nil {
					b.Fatal(err)
				}
				st := stW.Stream()
				defer stW.End()
				track := stW.AddTrack(codec)
				if fts[i], err = ingest.NewFrameTrack(codec, track, stW, nil); err != nil {
					b.Fatal(err)
				}
				defer st.Demand(track + 1)()
				sts[i] = st
			}
			for x.Running() != n {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // their cursors open
			next := 0
			// One second of audio into every stream, then wait until every
			// transcoder wrote its 50 packets: the ring never overflows.
			second := func() {
				start := make([]uint64, n)
				for i, st := range sts {
					start[i], _ = st.Ingested()
				}
				for k := 0; k < 47; k++ {
					au := aus[(next+k)%len(aus)]
					pts := time.Duration(next+k) * transcode.SamplesPerFrame * time.Second / 48000
					for _, ft := range fts {
						if err := ft.Write(pts, pts, [][]byte{au.Payload}); err != nil {
							b.Fatal(err)
						}
					}
				}
				next += 47
				deadline := time.Now().Add(10 * time.Second)
				for i, st := range sts {
					for {
						got, _ := st.Ingested()
						if got-start[i] >= 47+45 || time.Now().After(deadline) {
							break
						}
						time.Sleep(100 * time.Microsecond)
					}
				}
			}
			second() // warm up
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			for range b.N {
				second()
			}
			cpu := processCPU() - cpu0
			b.StopTimer()
			per := float64(cpu.Microseconds()) / 1000 / float64(b.N*n)
			b.ReportMetric(per, "cpu-ms/s-audio/stream")
			b.ReportMetric(per*float64(n)/1000, "cores-live")
		})
	}
}
