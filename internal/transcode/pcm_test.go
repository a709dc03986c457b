package transcode

import (
	"math"
	"testing"
)

// encodeG711 is the test's G.711 encoder: the code whose expansion is
// nearest to each sample (the tables are monotonic per sign, a search of
// all 256 is simplest).
func encodeG711(pcm []float32, mulawLaw bool) []byte {
	tab := &alawTable
	if mulawLaw {
		tab = &mulawTable
	}
	out := make([]byte, len(pcm))
	for i, v := range pcm {
		best, bd := 0, math.Inf(1)
		for c := range 256 {
			if d := math.Abs(float64(tab[c] - v)); d < bd {
				best, bd = c, d
			}
		}
		out[i] = byte(best)
	}
	return out
}

func TestG711Tables(t *testing.T) {
	// G.711 Tables 1 and 2: 0xd5 (A-law) and 0xff (μ-law) are the
	// smallest positive steps, 0x2a and 0x80 the largest magnitudes.
	for _, c := range []struct {
		law  string
		got  int
		want int
	}{
		{"A 0xd5", alaw(0xd5), 8}, {"A 0x55", alaw(0x55), -8},
		{"A 0xaa", alaw(0xaa), 32256}, {"A 0x2a", alaw(0x2a), -32256},
		{"μ 0xff", mulaw(0xff), 0}, {"μ 0x80", mulaw(0x80), 32124},
		{"μ 0x00", mulaw(0x00), -32124}, {"μ 0xfe", mulaw(0xfe), 8},
	} {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.law, c.got, c.want)
		}
	}
	x := sines([]tone{{440, -6}}, 0.1)
	for _, mu := range []bool{false, true} {
		back := DecodeG711(nil, encodeG711(x, mu), mu)
		var e, s float64
		for i := range x {
			s += float64(x[i]) * float64(x[i])
			e += float64(x[i]-back[i]) * float64(x[i]-back[i])
		}
		if snr := 10 * math.Log10(s/e); snr < 30 {
			t.Errorf("mulaw %v: round trip SNR %.1f dB, want >= 30", mu, snr)
		}
	}
}

// decodeOpus decodes packets to 48 kHz interleaved samples.
func decodeOpus(t testing.TB, pkts []OpusPacket, ch int) []float32 {
	t.Helper()
	dec, err := NewOpusDecoder(ch)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	buf := make([]float32, maxOpusSamples*ch)
	var out []float32
	for _, p := range pkts {
		n, err := dec.Decode(p.Payload, false, buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:n*ch]...)
	}
	return out
}

// resample8k returns a sine sampled at rate.
func sineAt(rate int, hz, dbfs, seconds float64) []float32 {
	n := int(seconds * float64(rate))
	amp := math.Pow(10, dbfs/20)
	pcm := make([]float32, n)
	for i := range pcm {
		pcm[i] = float32(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate)))
	}
	return pcm
}

// TestToOpus encodes a 440 Hz tone to Opus from each kind of input and
// decodes it with libopus: frequency, level and timestamps must hold.
func TestToOpus(t *testing.T) {
	needLibs(t)
	cases := []struct {
		name   string
		rate   int
		ch     int
		block  int // input samples per channel per push
		mulaw  *bool
		outCh  int
		wantDB float64
	}{
		{"48k stereo in AAC-sized blocks", 48000, 2, 1024, nil, 2, -6 - 3.01},
		{"44.1k stereo (resampled)", 44100, 2, 1024, nil, 2, -6 - 3.01},
		{"8k mono PCMA", 8000, 1, 160, new(false), 1, -6 - 3.01},
		{"8k mono PCMU", 8000, 1, 160, new(true), 1, -6 - 3.01},
		{"48k stereo to mono", 48000, 2, 960, nil, 1, -6 - 3.01},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mono := sineAt(c.rate, 440, -6, 2)
			in := mono
			if c.ch == 2 {
				in = make([]float32, 2*len(mono))
				for i, v := range mono {
					in[2*i], in[2*i+1] = v, v
				}
			}
			tr, err := NewToOpus(OpusConfig{Channels: c.outCh}, c.rate, c.ch)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			var pkts []OpusPacket
			const ts0 = 123456
			for at := 0; at+c.block <= len(mono); at += c.block {
				block := in[at*c.ch : (at+c.block)*c.ch]
				if c.mulaw != nil {
					block = DecodeG711(nil, encodeG711(block, *c.mulaw), *c.mulaw)
				}
				out, err := tr.Push(block, ts0+int64(at)*SampleRate/int64(c.rate))
				if err != nil {
					t.Fatal(err)
				}
				pkts = append(pkts, out...)
			}
			if len(pkts) < 95 {
				t.Fatalf("%d packets for 2 s", len(pkts))
			}
			for i, p := range pkts {
				if want := pkts[0].TS + int64(i*960); p.TS != want {
					t.Fatalf("packet %d: TS %d, want %d", i, p.TS, want)
				}
			}
			// The first packet starts at the input's first sample, less the
			// encoder's lookahead (and the resampler's delay, a few samples).
			if d := pkts[0].TS - ts0; d > 0 || d < -48*10 {
				t.Errorf("first packet at %+d ticks from the input's start", d)
			}
			pcm := decodeOpus(t, pkts, c.outCh)
			for ch := range c.outCh {
				x := channel(pcm, c.outCh, ch, SampleRate/2, len(pcm)/c.outCh-SampleRate/4)
				if hz := zeroCrossingHz(x); math.Abs(hz-440) > 2 {
					t.Errorf("channel %d: %.1f Hz, want 440", ch, hz)
				}
				if db := rmsDB(x); math.Abs(db-c.wantDB) > 1 {
					t.Errorf("channel %d: %.1f dBFS RMS, want %.1f", ch, db, c.wantDB)
				}
			}
		})
	}
}

// TestToOpusGaps fills a short gap with silence (the timestamps stay on
// the input's timeline) and restarts after a jump backwards.
func TestToOpusGaps(t *testing.T) {
	needLibs(t)
	tr, err := NewToOpus(OpusConfig{}, 8000, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	block := sineAt(8000, 440, -6, 0.02)
	var pkts []OpusPacket
	push := func(ts int64) {
		out, err := tr.Push(block, ts)
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, out...)
	}
	for i := range 10 {
		push(int64(i) * 960)
	}
	for i := 15; i < 20; i++ { // 100 ms lost
		push(int64(i) * 960)
	}
	if len(pkts) != 20 {
		t.Fatalf("%d packets, want 20 (the gap filled)", len(pkts))
	}
	for i, p := range pkts {
		if p.TS != pkts[0].TS+int64(i)*960 {
			t.Fatalf("packet %d: TS %d, not continuous", i, p.TS)
		}
	}
	push(0) // backwards: a new timeline
	push(960)
	if got := pkts[len(pkts)-1].TS; got > 960 {
		t.Errorf("after the jump back: TS %d", got)
	}
	if tr.f.discontinuities != 1 {
		t.Errorf("%d discontinuities, want 1", tr.f.discontinuities)
	}
}

// TestToAACFromG711 is the LL-HLS path of a G.711 stream: 8 kHz A-law
// resampled to 48 kHz AAC-LC, decoded back by libavcodec.
func TestToAACFromG711(t *testing.T) {
	needLibs(t)
	tr, err := NewToAAC(Config{}, 8000, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	x := sineAt(8000, 440, -6, 2)
	var frames []AACFrame
	for at := 0; at+160 <= len(x); at += 160 {
		out, err := tr.Push(DecodeG711(nil, encodeG711(x[at:at+160], false), false), int64(at)*6)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, out...)
	}
	if len(frames) < 90 {
		t.Fatalf("%d AAC frames for 2 s", len(frames))
	}
	asc := tr.Encoder().Config()
	if asc.SampleRate != SampleRate || asc.ChannelConfig != 1 {
		t.Fatalf("AudioSpecificConfig %+v", asc)
	}
	pcm, ch := decodeAAC(t, asc, frames)
	xx := channel(pcm, ch, 0, SampleRate/2, len(pcm)/ch-SampleRate/4)
	if hz := zeroCrossingHz(xx); math.Abs(hz-440) > 2 {
		t.Errorf("%.1f Hz, want 440", hz)
	}
	if db := rmsDB(xx); math.Abs(db+9.01) > 1 {
		t.Errorf("%.1f dBFS RMS, want -9", db)
	}
}

// TestOpusQuality encodes the benchmark's music at 128 kbit/s stereo at
// each libopus complexity and measures the decoded output's SNR against
// the input (aligned by the packets' timestamps, which take the encoder's
// lookahead off): the quality side of BenchmarkToOpus's costs.
func TestOpusQuality(t *testing.T) {
	needLibs(t)
	in := music(2, 3)
	for _, cx := range []int{1, 3, 5, 7, 10} {
		tr, err := NewToOpus(OpusConfig{Channels: 2, Bitrate: 128000, Complexity: cx}, SampleRate, 2)
		if err != nil {
			t.Fatal(err)
		}
		var pkts []OpusPacket
		for at := 0; at+SamplesPerFrame <= len(in)/2; at += SamplesPerFrame {
			out, err := tr.Push(in[at*2:(at+SamplesPerFrame)*2], int64(at))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range out {
				pkts = append(pkts, OpusPacket{TS: p.TS, Payload: p.Payload})
			}
		}
		tr.Close()
		out := decodeOpus(t, pkts, 2)
		// Decoded sample k is the input's sample pkts[0].TS+k.
		shift := int(-pkts[0].TS)
		got := out[shift*2:]
		n := min(len(got), len(in)) / 2
		snr := (snrDB(in, got, 2, 0, SampleRate/2, n-SampleRate/4) + snrDB(in, got, 2, 1, SampleRate/2, n-SampleRate/4)) / 2
		t.Logf("complexity %2d: SNR %.1f dB", cx, snr)
		if snr < 12 {
			t.Errorf("complexity %d: SNR %.1f dB, want >= 12 (misaligned, or the encoder broken)", cx, snr)
		}
	}
}

// TestG711RoundTrip: every G.711 byte decodes and encodes back to itself
// (μ-law's two zeros both come back as positive zero), both laws.
func TestG711RoundTrip(t *testing.T) {
	for _, mu := range []bool{true, false} {
		for b := range 256 {
			pcm := DecodeG711(nil, []byte{byte(b)}, mu)
			got := EncodeG711(nil, pcm, mu)[0]
			if got != byte(b) && !(mu && b == 0x7f && got == 0xff) {
				t.Errorf("mulaw %v: byte %#x decodes to %v, encodes to %#x", mu, b, pcm[0], got)
			}
		}
		// Full scale and beyond clip rather than wrap.
		for _, s := range []float32{1.5, -1.5, 1, -1} {
			back := DecodeG711(nil, EncodeG711(nil, []float32{s}, mu), mu)[0]
			if (back > 0) != (s > 0) || back < -1 || back > 1 || (back > -0.9 && back < 0.9) {
				t.Errorf("mulaw %v: %v comes back as %v", mu, s, back)
			}
		}
	}
}
