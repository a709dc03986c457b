package e2e

import (
	"context"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// The transcoding tests' source: a frame source written straight into a
// hub stream as RTP, as the RTMP/SRT/RTSP edges do: the clip's H264 at 25
// fps and a tone that sounds for 600 ms of every second of stream time
// (440 Hz left, 660 Hz right for stereo, -6 dBFS peak), as AAC-LC (RFC
// 3640) or G.711 A-law, with or without RTCP sender reports of both
// tracks that put stream time t at wall-clock time t0+t.

const (
	toneOn    = 600 * time.Millisecond
	toneLevel = -6.0 // dBFS peak: -9.03 dBFS RMS
)

// toneAt is the source's sample of channel c at stream time t.
func toneAt(c int, t float64) float32 {
	if math.Mod(t, 1) >= toneOn.Seconds() || t < 0 {
		return 0
	}
	hz := 440.0
	if c == 1 {
		hz = 660
	}
	return float32(math.Pow(10, toneLevel/20) * math.Sin(2*math.Pi*hz*t))
}

type audioKind int

const (
	aacStereo audioKind = iota
	pcmaMono
	opusMono // as a WebRTC publisher sends it
)

// hubSource publishes the stream and feeds it in real time until stopped.
type hubSource struct {
	st     *hub.Stream
	w      *hub.Writer
	t0     time.Time // wall-clock time of stream time 0
	vTrack int
	aTrack int
	done   chan struct{}
}

type nopPublisher struct{}

func (nopPublisher) RequestKeyframe() {}

func h264Codec() media.Codec {
	return media.Codec{MimeType: "video/H264", ClockRate: 90000,
		Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
}

// startHubSource publishes the stream through ingest's frame writer, as
// the RTMP, SRT and RTSP edges do; with reports, it also sets sender
// reports of both tracks (RTSP sources have them; RTMP and SRT do not).
func startHubSource(ctx context.Context, t *testing.T, h *hub.Hub, name string, kind audioKind, reports bool) *hubSource {
	t.Helper()
	var ac media.Codec
	var enc transcode.Encoder
	var opusEnc *transcode.OpusEncoder
	switch kind {
	case aacStereo:
		var err error
		if enc, err = transcode.NewFFmpegEncoder(2, 128000, transcode.DefaultAACOptions); err != nil {
			t.Fatal(err)
		}
		asc, err := enc.Config().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if ac, err = ingest.AACCodec(asc); err != nil {
			t.Fatal(err)
		}
	case pcmaMono:
		ac = ingest.G711Codec(false, 8000, 1)
	case opusMono:
		ac = ingest.OpusCodec(1)
		var err error
		if opusEnc, err = transcode.NewOpusEncoder(48000, 1, 64000, transcode.DefaultOpusComplexity); err != nil {
			t.Fatal(err)
		}
	}
	stW, err := h.Publish(name, nopPublisher{}, []media.Codec{h264Codec(), ac})
	if err != nil {
		t.Fatal(err)
	}
	s := &hubSource{st: stW.Stream(), w: stW, t0: time.Now(), done: make(chan struct{})}
	s.vTrack = stW.AddTrack(h264Codec())
	s.aTrack = stW.AddTrack(ac)
	vw, aw := &learnWriter{w: s.w}, &learnWriter{w: s.w}
	vft, err := ingest.NewFrameTrack(h264Codec(), s.vTrack, vw, nil)
	if err != nil {
		t.Fatal(err)
	}
	aft, err := ingest.NewFrameTrack(ac, s.aTrack, aw, nil)
	if err != nil {
		t.Fatal(err)
	}
	clip := loadClip(t)
	aRate := int64(ac.ClockRate)
	go func() {
		defer close(s.done)
		if enc != nil {
			defer enc.Close()
		}
		if opusEnc != nil {
			defer opusEnc.Close()
		}
		defer stW.End()
		var frames []transcode.AACFrame
		var sample int64 // next audio sample (per channel) to encode
		frame := 0       // next video frame
		lastSR := time.Time{}
		for {
			now := time.Since(s.t0)
			if reports && vw.known && aw.known && time.Since(lastSR) > 500*time.Millisecond {
				lastSR = time.Now()
				el := lastSR.Sub(s.t0)
				ntp := media.ToNTP(lastSR)
				stW.SetSenderReport(s.vTrack, ntp, vw.origin+rtpTicks(el, 90000))
				stW.SetSenderReport(s.aTrack, ntp, aw.origin+rtpTicks(el, aRate))
			}
			for ; time.Duration(frame)*40*time.Millisecond <= now; frame++ {
				pts := time.Duration(frame) * 40 * time.Millisecond
				if err := vft.Write(pts, pts, clip[frame%len(clip)]); err != nil {
					t.Error(err)
					return
				}
				vw.learn(rtpTicks(pts, 90000))
			}
			switch kind {
			case aacStereo:
				// Encoded 50 ms ahead (the encoder holds two frames back),
				// each access unit written when its time comes, as a live
				// encoder's muxer sends it.
				for ; time.Duration(sample)*time.Second/time.Duration(aRate) <= now+50*time.Millisecond; sample += transcode.SamplesPerFrame {
					pcm := make([]float32, 2*transcode.SamplesPerFrame)
					for i := range transcode.SamplesPerFrame {
						tt := float64(sample+int64(i)) / float64(aRate)
						pcm[2*i], pcm[2*i+1] = toneAt(0, tt), toneAt(1, tt)
					}
					var err error
					if frames, err = enc.Encode(frames, pcm, sample); err != nil {
						t.Error(err)
						return
					}
				}
				for len(frames) > 0 && time.Duration(frames[0].PTS)*time.Second/time.Duration(aRate) <= now {
					f := frames[0]
					frames = frames[1:]
					// The priming frame's PTS is negative: it decodes to
					// the encoder's delay, before stream time 0.
					pts := time.Duration(f.PTS) * time.Second / time.Duration(aRate)
					if err := aft.Write(pts, pts, [][]byte{f.Payload}); err != nil {
						t.Error(err)
						return
					}
					aw.learn(rtpTicks(pts, aRate))
				}
			case opusMono:
				for ; time.Duration(sample)*time.Second/time.Duration(aRate) <= now; sample += 960 {
					pcm := make([]float32, 960)
					for i := range pcm {
						pcm[i] = toneAt(0, float64(sample+int64(i))/float64(aRate))
					}
					pkt, err := opusEnc.Encode(pcm)
					if err != nil {
						t.Error(err)
						return
					}
					pts := time.Duration(sample) * time.Second / time.Duration(aRate)
					if err := aft.Write(pts, pts, [][]byte{pkt}); err != nil {
						t.Error(err)
						return
					}
					aw.learn(rtpTicks(pts, aRate))
				}
			case pcmaMono:
				for ; time.Duration(sample)*time.Second/time.Duration(aRate) <= now; sample += 160 {
					b := make([]byte, 160)
					for i := range b {
						b[i] = alawEncode(toneAt(0, float64(sample+int64(i))/float64(aRate)))
					}
					pts := time.Duration(sample) * time.Second / time.Duration(aRate)
					if err := aft.Write(pts, pts, [][]byte{b}); err != nil {
						t.Error(err)
						return
					}
					aw.learn(rtpTicks(pts, aRate))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return s
}

// learnWriter passes a frame writer's packets on and learns the random
// origin of its timestamps, for the source's sender reports.
type learnWriter struct {
	w      *hub.Writer
	last   uint32
	origin uint32
	known  bool
}

func (w *learnWriter) Write(p *hub.Packet) { w.last = p.Timestamp; w.w.Write(p) }

func (w *learnWriter) learn(ticks uint32) {
	if !w.known {
		w.origin, w.known = w.last-ticks, true
	}
}

// rtpTicks is the frame writer's conversion of a duration to clock ticks.
func rtpTicks(d time.Duration, hz int64) uint32 {
	s, rest := d/time.Second, d%time.Second
	return uint32(int64(s)*hz + int64(rest)*hz/int64(time.Second))
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// alawEncode is G.711 A-law, as Sun's reference g711.c does it.
func alawEncode(f float32) byte {
	v := int(math.Max(-32768, math.Min(32767, float64(f)*32768))) >> 3 // 13 bits
	mask := byte(0xd5)
	if v < 0 {
		mask = 0x55
		v = -v - 1
	}
	seg := 0
	for _, end := range []int{0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff} {
		if v <= end {
			break
		}
		seg++
	}
	if seg >= 8 {
		return 0x7f ^ mask
	}
	a := byte(seg << 4)
	if seg < 2 {
		a |= byte(v>>1) & 0x0f
	} else {
		a |= byte(v>>seg) & 0x0f
	}
	return a ^ mask
}

// alawDecode is G.711 A-law expansion, as float.
func alawDecode(b byte) float32 {
	b ^= 0x55
	t := int(b&0x0f) << 4
	switch seg := (b & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if b&0x80 == 0 {
		t = -t
	}
	return float32(t) / 32768
}

// audioSeen is what a viewer got of the audio: packets and the newest
// sender reports of both tracks.
type audioSeen struct {
	mu    sync.Mutex
	pt    uint8
	pkts  []client.OpusPacket
	srs   map[webrtc.RTPCodecType]rtcp.SenderReport
	video []uint32 // RTP timestamps of video frames (marker packets)
}

func (r *audioSeen) onRTP(kind webrtc.RTPCodecType, p *rtp.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if kind == webrtc.RTPCodecTypeAudio {
		r.pt = p.PayloadType
		r.pkts = append(r.pkts, client.OpusPacket{Payload: append([]byte(nil), p.Payload...), RTPTimestamp: p.Timestamp, SequenceNumber: p.SequenceNumber})
	} else if p.Marker {
		r.video = append(r.video, p.Timestamp)
	}
}

func (r *audioSeen) onRTCP(kind webrtc.RTPCodecType, pkts []rtcp.Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			if r.srs == nil {
				r.srs = map[webrtc.RTPCodecType]rtcp.SenderReport{}
			}
			r.srs[kind] = *sr
		}
	}
}

// pcm lays the decoded audio out on its RTP clock: sample i of the
// result is RTP timestamp ts0+i (48 kHz, or 8 kHz for G.711).
func (r *audioSeen) pcm(t *testing.T, ch int, g711 bool) (pcm []float32, ts0 uint32) {
	t.Helper()
	r.mu.Lock()
	pkts := append([]client.OpusPacket(nil), r.pkts...)
	r.mu.Unlock()
	sort.Slice(pkts, func(i, j int) bool { return int16(pkts[i].SequenceNumber-pkts[j].SequenceNumber) < 0 })
	if len(pkts) == 0 {
		t.Fatal("no audio")
	}
	ts0 = pkts[0].RTPTimestamp
	var dec transcode.Decoder
	if !g711 {
		var err error
		if dec, err = transcode.NewOpusDecoder(ch); err != nil {
			t.Fatal(err)
		}
		defer dec.Close()
	}
	buf := make([]float32, 5760*ch)
	for _, p := range pkts {
		at := int(p.RTPTimestamp - ts0)
		var out []float32
		if g711 {
			for _, b := range p.Payload {
				out = append(out, alawDecode(b))
			}
		} else {
			n, err := dec.Decode(p.Payload, false, buf)
			if err != nil {
				t.Fatal(err)
			}
			out = buf[:n*ch]
		}
		if need := (at*ch + len(out)); need > len(pcm) {
			pcm = append(pcm, make([]float32, need-len(pcm))...)
		}
		copy(pcm[at*ch:], out)
	}
	return pcm, ts0
}

// onsets returns the sample indices where the tone starts after at least
// 200 ms of silence (of channel 0): the first sample above 0.1, 70 µs
// after the sine's start at -6 dBFS.
func onsets(pcm []float32, ch, rate int) []int {
	var out []int
	lastLoud := 0
	for i := 0; i < len(pcm)/ch; i++ {
		if math.Abs(float64(pcm[i*ch])) > 0.1 {
			if i-lastLoud > rate/5 {
				out = append(out, i)
			}
			lastLoud = i
		}
	}
	return out
}

// wallOf maps an RTP timestamp to wall-clock time with a sender report.
func wallOf(sr rtcp.SenderReport, ts uint32, rate int) time.Time {
	return media.NTPTime(sr.NTPTime).Add(time.Duration(int64(int32(ts-sr.RTPTime)) * int64(time.Second) / int64(rate)))
}

// gridError is how far d is from the nearest multiple of step.
func gridError(d, step time.Duration) time.Duration {
	e := d % step
	if e > step/2 {
		e -= step
	} else if e < -step/2 {
		e += step
	}
	return e
}
