package transcode

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// music returns seconds of interleaved audio that keeps an encoder busier
// than a sine: a chord of harmonics that changes every 250 ms, an
// envelope, and noise 40 dB down, different in each channel.
func music(ch int, seconds float64) []float32 {
	n := int(seconds * SampleRate)
	rng := rand.New(rand.NewPCG(1, 2))
	notes := []float64{220, 247, 262, 294, 330, 349, 392, 440}
	pcm := make([]float32, n*ch)
	for i := range n {
		step := i / (SampleRate / 4)
		env := 0.5 + 0.5*math.Exp(-float64(i%(SampleRate/4))/8000)
		for c := range ch {
			root := notes[(step+3*c)%len(notes)]
			v := 0.0
			for h := 1; h <= 6; h++ {
				v += math.Sin(2*math.Pi*root*float64(h)*float64(i)/SampleRate) / float64(h)
				v += 0.5 * math.Sin(2*math.Pi*root*1.26*float64(h)*float64(i)/SampleRate) / float64(h)
			}
			pcm[i*ch+c] = float32(0.15*env*v + 0.01*(rng.Float64()*2-1))
		}
	}
	return pcm
}

// perSecondOfAudio reports the CPU time (the thread's, on Linux; else the
// wall time) per second of audio, b.N being seconds of audio.
func perSecondOfAudio(b *testing.B, run func()) {
	b.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0, ok := threadCPU()
	start := time.Now()
	run()
	cpu1, _ := threadCPU()
	b.StopTimer()
	d := time.Since(start)
	if ok {
		d = cpu1 - cpu0
	}
	b.ReportMetric(float64(d.Microseconds())/1000/float64(b.N), "cpu-ms/s-audio")
}

// BenchmarkTranscode measures the whole path, libopus decode → FFmpeg AAC
// encode, per second of 48 kHz audio; the goal is ≤ 10 ms of CPU for
// stereo 128 kbit/s. "default" is DefaultAACOptions; "fast-all-tools" is
// the fast coder with PNS, intensity and M/S stereo and TNS left on (the
// default until they were measured), "twoloop" FFmpeg's own default. The
// Opus input is 128 kbit/s stereo, more than browsers send (about 64), so
// the decode half is on the high side.
func BenchmarkTranscode(b *testing.B) {
	needLibs(b)
	cases := []struct {
		name     string
		channels int
		opusBR   int
		cfg      Config
	}{
		{"stereo-128k-default", 2, 128000, Config{Channels: 2, Bitrate: 128000}},
		{"stereo-128k-fast-all-tools", 2, 128000, Config{Channels: 2, Bitrate: 128000, AACOptions: "aac_coder=fast"}},
		{"stereo-128k-twoloop", 2, 128000, Config{Channels: 2, Bitrate: 128000, AACOptions: "aac_coder=twoloop"}},
		{"stereo-128k-default-opus64k", 2, 64000, Config{Channels: 2, Bitrate: 128000}},
		{"mono-64k-default", 1, 64000, Config{Channels: 1, Bitrate: 64000}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			pkts := opusPackets(b, music(c.channels, 10), c.channels, c.opusBR)
			tr, err := New(c.cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			perSecondOfAudio(b, func() {
				i := 0
				for range b.N {
					for range 50 { // 50 packets of 20 ms
						if _, err := tr.Push(pkts[i%len(pkts)], uint32(i*960), uint16(i)); err != nil {
							b.Fatal(err)
						}
						i++
					}
				}
			})
		})
	}
}

// BenchmarkOpusDecode is libopus alone.
func BenchmarkOpusDecode(b *testing.B) {
	needLibs(b)
	pkts := opusPackets(b, music(2, 10), 2, 128000)
	dec, err := NewOpusDecoder(2)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	pcm := make([]float32, maxOpusSamples*2)
	perSecondOfAudio(b, func() {
		i := 0
		for range b.N {
			for range 50 {
				if _, err := dec.Decode(pkts[i%len(pkts)], false, pcm); err != nil {
					b.Fatal(err)
				}
				i++
			}
		}
	})
}

// BenchmarkAACEncode is FFmpeg's AAC encoder alone, stereo 128 kbit/s:
// DefaultAACOptions, each coder with every tool on, and the fast coder
// without one tool at a time (perceptual noise substitution, intensity
// and M/S stereo, TNS).
func BenchmarkAACEncode(b *testing.B) {
	needLibs(b)
	pcm := music(2, 10)
	frames := len(pcm) / 2 / SamplesPerFrame
	for _, opts := range []string{DefaultAACOptions, "aac_coder=fast", "aac_coder=twoloop", "aac_coder=fast:aac_ms=0", "aac_coder=fast:aac_is=0", "aac_coder=fast:aac_pns=0", "aac_coder=fast:aac_tns=0"} {
		b.Run(opts, func(b *testing.B) {
			enc, err := NewFFmpegEncoder(2, 128000, opts)
			if err != nil {
				b.Fatal(err)
			}
			defer enc.Close()
			var out []AACFrame
			perSecondOfAudio(b, func() {
				for pts := int64(0); pts < int64(b.N)*SampleRate; pts += SamplesPerFrame {
					f := int(pts/SamplesPerFrame) % frames
					out, err = enc.Encode(out[:0], pcm[f*2*SamplesPerFrame:(f+1)*2*SamplesPerFrame], pts)
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
