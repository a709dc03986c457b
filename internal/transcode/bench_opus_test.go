package transcode

import (
	"fmt"
	"testing"
)

// aacFrames encodes pcm (48 kHz stereo) to AAC-LC at 128 kbit/s.
func aacFrames(b *testing.B, pcm []float32) (asc []byte, frames []AACFrame) {
	b.Helper()
	enc, err := NewFFmpegEncoder(2, 128000, DefaultAACOptions)
	if err != nil {
		b.Fatal(err)
	}
	defer enc.Close()
	for at := 0; at+SamplesPerFrame <= len(pcm)/2; at += SamplesPerFrame {
		if frames, err = enc.Encode(frames, pcm[at*2:(at+SamplesPerFrame)*2], int64(at)); err != nil {
			b.Fatal(err)
		}
	}
	if asc, err = enc.Config().Marshal(); err != nil {
		b.Fatal(err)
	}
	return asc, frames
}

// BenchmarkToOpus measures the paths to Opus for WebRTC viewers, per
// second of audio: AAC-LC 48 kHz stereo (decoded by libavcodec) to Opus
// stereo 128 kbit/s at libopus complexities 1 to 10 (the goal: ≤ 8 ms),
// and G.711 A-law 8 kHz mono to Opus 64 kbit/s (≤ 3 ms; libopus takes
// the 8 kHz input as it is).
func BenchmarkToOpus(b *testing.B) {
	needLibs(b)
	asc, frames := aacFrames(b, music(2, 10))
	for _, cx := range []int{1, 3, 5, 7, 10} {
		b.Run(fmt.Sprintf("aac-stereo-128k-complexity-%d", cx), func(b *testing.B) {
			dec, err := NewAACDecoder(asc)
			if err != nil {
				b.Fatal(err)
			}
			defer dec.Close()
			tr, err := NewToOpus(OpusConfig{Channels: 2, Bitrate: 128000, Complexity: cx}, SampleRate, 2)
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			perSecondOfAudio(b, func() {
				for pts := int64(0); pts < int64(b.N)*SampleRate; pts += SamplesPerFrame {
					pcm, _, err := dec.Decode(frames[int(pts/SamplesPerFrame)%len(frames)].Payload)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tr.Push(pcm, pts); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
	pcma := make([]byte, 8000*10)
	for i, v := range music(1, 10)[:len(pcma)] { // a 48 kHz signal read at 8 kHz: busy enough
		pcma[i] = encodeG711([]float32{v}, false)[0]
	}
	b.Run("pcma-mono-64k", func(b *testing.B) {
		tr, err := NewToOpus(OpusConfig{}, 8000, 1)
		if err != nil {
			b.Fatal(err)
		}
		defer tr.Close()
		var pcm []float32
		perSecondOfAudio(b, func() {
			for at := 0; at < b.N*8000; at += 160 {
				off := at % len(pcma)
				pcm = DecodeG711(pcm[:0], pcma[off:off+160], false)
				if _, err := tr.Push(pcm, int64(at)*6); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkG711ToAAC is the LL-HLS and recording path of a G.711 stream:
// A-law 8 kHz decoded, resampled to 48 kHz by libswresample, AAC-LC 64
// kbit/s mono.
func BenchmarkG711ToAAC(b *testing.B) {
	needLibs(b)
	pcma := make([]byte, 8000*10)
	for i, v := range music(1, 10)[:len(pcma)] {
		pcma[i] = encodeG711([]float32{v}, false)[0]
	}
	tr, err := NewToAAC(Config{}, 8000, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	var pcm []float32
	perSecondOfAudio(b, func() {
		for at := 0; at < b.N*8000; at += 160 {
			off := at % len(pcma)
			pcm = DecodeG711(pcm[:0], pcma[off:off+160], false)
			if _, err := tr.Push(pcm, int64(at)*6); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpusToG711 is the path of a WebRTC publisher's Opus to a
// viewer that offers only G.711: Opus mono 64 kbit/s decoded by libopus,
// resampled to 8 kHz by libswresample, μ-law encoded.
func BenchmarkOpusToG711(b *testing.B) {
	needLibs(b)
	enc, err := NewOpusEncoder(SampleRate, 1, 64000, DefaultOpusComplexity)
	if err != nil {
		b.Fatal(err)
	}
	var pkts [][]byte
	pcm := music(1, 10)
	for at := 0; at+960 <= len(pcm); at += 960 {
		p, err := enc.Encode(pcm[at : at+960])
		if err != nil {
			b.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	enc.Close()
	dec, err := NewOpusDecoder(1)
	if err != nil {
		b.Fatal(err)
	}
	defer dec.Close()
	tr, err := NewToG711(G711Config{Mulaw: true}, SampleRate, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	buf := make([]float32, maxOpusSamples)
	perSecondOfAudio(b, func() {
		for i := 0; i < b.N*50; i++ {
			n, err := dec.Decode(pkts[i%len(pkts)], false, buf)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := tr.Push(buf[:n], int64(i)*960); err != nil {
				b.Fatal(err)
			}
		}
	})
}
