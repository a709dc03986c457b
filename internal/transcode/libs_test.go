package transcode

import (
	"bytes"
	"math"
	"os"
	"sync"
	"testing"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// These tests run libopus and libavcodec for real: a sine encoded with
// libopus goes through a Transcoder and comes back out of libavcodec's
// AAC decoder, where its frequency, level and timing are measured.

// needLibs skips a test that needs the libraries where they are missing,
// unless scripts/test.sh, having installed them, requires them.
func needLibs(t testing.TB) {
	t.Helper()
	if err := Available(); err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_TRANSCODE") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// tone is one channel's sine.
type tone struct {
	freq float64 // Hz
	dbfs float64 // peak level
}

// sines returns seconds of interleaved audio, one tone per channel.
func sines(tones []tone, seconds float64) []float32 {
	n := int(seconds * SampleRate)
	ch := len(tones)
	pcm := make([]float32, n*ch)
	for c, tn := range tones {
		amp := math.Pow(10, tn.dbfs/20)
		for i := range n {
			pcm[i*ch+c] = float32(amp * math.Sin(2*math.Pi*tn.freq*float64(i)/SampleRate))
		}
	}
	return pcm
}

// opusPackets encodes pcm in 20 ms packets.
func opusPackets(t testing.TB, pcm []float32, ch, bitrate int) [][]byte {
	t.Helper()
	enc, err := newOpusEncoder(ch, bitrate, 10, false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.close()
	const frame = 960
	var pkts [][]byte
	for i := 0; i+frame*ch <= len(pcm); i += frame * ch {
		p, err := enc.encode(pcm[i : i+frame*ch])
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, p)
	}
	return pkts
}

// decodeAAC decodes the access units and returns the interleaved samples,
// which start at the first frame's PTS.
func decodeAAC(t testing.TB, asc mpeg4audio.AudioSpecificConfig, frames []AACFrame) ([]float32, int) {
	t.Helper()
	b, err := asc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dec, err := newAACDecoder(b)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.close()
	var out []float32
	channels := 0
	for _, f := range frames {
		pcm, ch, err := dec.decode(f.Payload)
		if err != nil {
			t.Fatal(err)
		}
		if len(pcm) == 0 {
			continue
		}
		if channels != 0 && ch != channels {
			t.Fatalf("channel count changed from %d to %d", channels, ch)
		}
		channels = ch
		out = append(out, pcm...)
	}
	return out, channels
}

// channel returns channel c of interleaved samples, from sample from to to.
func channel(pcm []float32, ch, c, from, to int) []float64 {
	x := make([]float64, 0, to-from)
	for i := from; i < to; i++ {
		x = append(x, float64(pcm[i*ch+c]))
	}
	return x
}

func rmsDB(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return 10 * math.Log10(s/float64(len(x))+1e-20)
}

// zeroCrossingHz estimates a sine's frequency from its upward zero
// crossings, with sub-sample interpolation.
func zeroCrossingHz(x []float64) float64 {
	first, last, n := -1.0, -1.0, 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			pos := float64(i-1) + x[i-1]/(x[i-1]-x[i])
			if first < 0 {
				first = pos
			} else {
				n++
			}
			last = pos
		}
	}
	if n == 0 {
		return 0
	}
	return float64(n) * SampleRate / (last - first)
}

// transcodePackets pushes 20 ms packets with consecutive sequence numbers
// and timestamps, skipping the indices in skip, and flushes.
func transcodePackets(t testing.TB, tr *Transcoder, pkts [][]byte, ts0 uint32, skip func(i int) bool) []AACFrame {
	t.Helper()
	var frames []AACFrame
	for i, p := range pkts {
		if skip != nil && skip(i) {
			continue
		}
		out, err := tr.Push(p, ts0+uint32(i*960), uint16(1000+i))
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, out...)
	}
	out, err := tr.Flush()
	if err != nil {
		t.Fatal(err)
	}
	return append(frames, out...)
}

func checkContinuous(t testing.TB, frames []AACFrame, delay int) {
	t.Helper()
	for i, f := range frames {
		if want := int64(i*SamplesPerFrame - delay); f.PTS != want {
			t.Fatalf("frame %d: PTS %d, want %d", i, f.PTS, want)
		}
		if len(f.Payload) == 0 {
			t.Fatalf("frame %d: empty", i)
		}
	}
}

func TestTranscodeSine(t *testing.T) {
	needLibs(t)
	cases := []struct {
		name  string
		tones []tone
		fmtp  string
	}{
		{"mono 1 kHz -6 dBFS", []tone{{1000, -6}}, "minptime=10;useinbandfec=1"},
		{"stereo 1 kHz left, 440 Hz right", []tone{{1000, -6}, {440, -12}}, "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := ChannelsFromFmtp(c.fmtp)
			if ch != len(c.tones) {
				t.Fatalf("ChannelsFromFmtp: %d channels, want %d", ch, len(c.tones))
			}
			pkts := opusPackets(t, sines(c.tones, 2), ch, 64000*ch)
			tr, err := New(Config{Channels: ch})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			asc := tr.Config()
			if asc.Type != mpeg4audio.ObjectTypeAACLC || asc.SampleRate != SampleRate || int(asc.ChannelConfig) != ch {
				t.Fatalf("AudioSpecificConfig %+v, want AAC-LC 48 kHz %d channels", asc, ch)
			}
			frames := transcodePackets(t, tr, pkts, 0x89abcdef, nil)
			// 2 s = 96000 samples, plus the encoder's delay, in 1024s.
			if want := (96000 + tr.Delay() + SamplesPerFrame - 1) / SamplesPerFrame; len(frames) != want {
				t.Fatalf("%d access units, want %d", len(frames), want)
			}
			checkContinuous(t, frames, tr.Delay())
			pcm, gotCh := decodeAAC(t, asc, frames)
			if gotCh != ch {
				t.Fatalf("AAC decodes to %d channels, want %d", gotCh, ch)
			}
			// Measure the middle second, after the codecs' ramp-up.
			from, to := tr.Delay()+24000, tr.Delay()+72000
			for c, tn := range c.tones {
				x := channel(pcm, ch, c, from, to)
				if hz := zeroCrossingHz(x); math.Abs(hz-tn.freq) > tn.freq*0.002 {
					t.Errorf("channel %d: %.2f Hz, want %.0f", c, hz, tn.freq)
				}
				want := tn.dbfs - 3.0103 // a sine's RMS is its peak -3 dB
				if got := rmsDB(x); math.Abs(got-want) > 1 {
					t.Errorf("channel %d: %.2f dBFS RMS, want %.2f ± 1", c, got, want)
				}
			}
		})
	}
}

func TestTranscodeLoss(t *testing.T) {
	needLibs(t)
	pkts := opusPackets(t, sines([]tone{{1000, -6}, {440, -6}}, 2), 2, 96000)
	tr, err := New(Config{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// Lose packets 40, 41 and 42 (0.8 s to 0.86 s).
	frames := transcodePackets(t, tr, pkts, 0xfffff000, func(i int) bool { return i >= 40 && i <= 42 })
	if want := (96000 + tr.Delay() + SamplesPerFrame - 1) / SamplesPerFrame; len(frames) != want {
		t.Fatalf("%d access units, want %d (the loss must be filled)", len(frames), want)
	}
	checkContinuous(t, frames, tr.Delay())
	st := tr.Stats()
	if st.Lost != 3 || st.Concealed != 3*960 || st.Silence != 0 {
		t.Fatalf("stats %+v, want 3 lost packets, 2880 concealed samples", st)
	}
	pcm, ch := decodeAAC(t, tr.Config(), frames)
	// After the loss the sine is back at its level and frequency.
	x := channel(pcm, ch, 0, tr.Delay()+48000, tr.Delay()+96000-4800)
	if hz := zeroCrossingHz(x); math.Abs(hz-1000) > 2 {
		t.Errorf("after the loss: %.2f Hz, want 1000", hz)
	}
	if got := rmsDB(x); math.Abs(got+9.03) > 1 {
		t.Errorf("after the loss: %.2f dBFS, want -9.03", got)
	}
}

func TestTranscodeDTX(t *testing.T) {
	needLibs(t)
	pkts := opusPackets(t, sines([]tone{{1000, -6}}, 3), 1, 48000)
	tr, err := New(Config{Channels: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// A sender in DTX sends nothing for a second and then goes on with
	// the next sequence number (RFC 7587 §3.1.3); packets 50..99 are
	// never sent, and the sequence numbers after them close up.
	var frames []AACFrame
	seq := uint16(7)
	for i, p := range pkts {
		if i >= 50 && i < 100 {
			continue
		}
		out, err := tr.Push(p, uint32(i*960), seq)
		if err != nil {
			t.Fatal(err)
		}
		seq++
		frames = append(frames, out...)
	}
	out, err := tr.Flush()
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, out...)
	if want := (144000 + tr.Delay() + SamplesPerFrame - 1) / SamplesPerFrame; len(frames) != want {
		t.Fatalf("%d access units, want %d", len(frames), want)
	}
	checkContinuous(t, frames, tr.Delay())
	if st := tr.Stats(); st.Silence != 48000 || st.Lost != 0 || st.Concealed != 0 {
		t.Fatalf("stats %+v, want 48000 samples of silence", st)
	}
	pcm, ch := decodeAAC(t, tr.Config(), frames)
	// The gap (1 s to 2 s of input, shifted by the delay) is silent, apart
	// from the codecs' fade at its edges.
	if got := rmsDB(channel(pcm, ch, 0, tr.Delay()+48000+2400, tr.Delay()+96000-2400)); got > -80 {
		t.Errorf("DTX gap: %.1f dBFS, want silence", got)
	}
	if got := rmsDB(channel(pcm, ch, 0, tr.Delay()+96000+4800, tr.Delay()+144000-4800)); math.Abs(got+9.03) > 1 {
		t.Errorf("after DTX: %.2f dBFS, want -9.03", got)
	}
}

// Two transcoders in one process must not share state (one AAC encoder
// library measured for this project did).
func TestTranscodeConcurrent(t *testing.T) {
	needLibs(t)
	freqs := []float64{1000, 700, 1500, 440}
	var wg sync.WaitGroup
	outputs := make([][]AACFrame, len(freqs))
	var asc mpeg4audio.AudioSpecificConfig
	for i, f := range freqs {
		pkts := opusPackets(t, sines([]tone{{f, -6}, {f, -6}}, 1), 2, 128000)
		tr, err := New(Config{Channels: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		asc = tr.Config()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j, p := range pkts {
				out, err := tr.Push(p, uint32(j*960), uint16(j))
				if err != nil {
					t.Error(err)
					return
				}
				outputs[i] = append(outputs[i], out...)
			}
		}()
	}
	wg.Wait()
	results := make([][]byte, len(freqs))
	for i, f := range freqs {
		pcm, ch := decodeAAC(t, asc, outputs[i])
		x := channel(pcm, ch, 1, 12000, 36000)
		if hz := zeroCrossingHz(x); math.Abs(hz-f) > f*0.002 {
			t.Errorf("transcoder %d: %.2f Hz, want %.0f", i, hz, f)
		}
		var buf bytes.Buffer
		for _, fr := range outputs[i] {
			buf.Write(fr.Payload)
		}
		results[i] = buf.Bytes()
	}
	// The same input alone gives the same bytes.
	pkts := opusPackets(t, sines([]tone{{freqs[0], -6}, {freqs[0], -6}}, 1), 2, 128000)
	tr, err := New(Config{Channels: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var buf bytes.Buffer
	for j, p := range pkts {
		out, err := tr.Push(p, uint32(j*960), uint16(j))
		if err != nil {
			t.Fatal(err)
		}
		for _, fr := range out {
			buf.Write(fr.Payload)
		}
	}
	if !bytes.Equal(buf.Bytes(), results[0]) {
		t.Error("a transcoder running beside others gave other bytes than alone")
	}
}

// A mono source published as stereo (sprop-stereo=1) and a stereo source
// transcoded to mono: libopus mixes, the output has the configured count.
func TestTranscodeChannelMix(t *testing.T) {
	needLibs(t)
	for _, c := range []struct{ src, out int }{{1, 2}, {2, 1}} {
		tones := []tone{{1000, -6}, {1000, -6}}[:c.src]
		pkts := opusPackets(t, sines(tones, 1), c.src, 64000)
		tr, err := New(Config{Channels: c.out})
		if err != nil {
			t.Fatal(err)
		}
		frames := transcodePackets(t, tr, pkts, 0, nil)
		pcm, ch := decodeAAC(t, tr.Config(), frames)
		tr.Close()
		if ch != c.out {
			t.Fatalf("%d→%d: AAC has %d channels", c.src, c.out, ch)
		}
		for k := range ch {
			if hz := zeroCrossingHz(channel(pcm, ch, k, 12000, 36000)); math.Abs(hz-1000) > 2 {
				t.Errorf("%d→%d: channel %d at %.2f Hz", c.src, c.out, k, hz)
			}
		}
	}
}

// FuzzPush feeds arbitrary payloads, timestamps and sequence numbers to
// libopus through a Transcoder: nothing from the network may crash it,
// and the output stays continuous.
func FuzzPush(f *testing.F) {
	f.Add([]byte{0xfc, 0xff, 0xfe}, uint32(0), uint16(0), uint8(3))
	f.Add([]byte{0x78, 0x01, 0x02, 0x03, 0x04}, uint32(0xffffff00), uint16(65535), uint8(1))
	f.Add([]byte{0x03, 0x83, 0x00}, uint32(960*50), uint16(3), uint8(2))
	f.Add([]byte{}, uint32(0), uint16(1), uint8(0))
	f.Fuzz(func(t *testing.T, payload []byte, ts uint32, seq uint16, step uint8) {
		needLibs(t)
		tr, err := New(Config{Channels: 2, NewEncoder: func(ch, _ int) (Encoder, error) { return &fakeEncoder{ch: ch}, nil }})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		var frames []AACFrame
		for i := range 4 {
			out, err := tr.Push(payload, ts+uint32(i)*uint32(step)*120, seq+uint16(i%3))
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, out...)
		}
		for i, fr := range frames {
			if fr.PTS != int64(i*SamplesPerFrame-1024) {
				t.Fatalf("frame %d: PTS %d", i, fr.PTS)
			}
		}
	})
}
