package transcode

import (
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// The fakes make the gap logic checkable sample by sample, without the C
// libraries: a packet decodes to 960 samples of the value in its first
// byte, PLC gives plcValue, FEC fecValue; the encoder turns each access
// unit into its samples.
const (
	plcValue = -1
	fecValue = -2
)

type fakeDecoder struct{ ch int }

func (d *fakeDecoder) Decode(packet []byte, fec bool, pcm []float32) (int, error) {
	switch {
	case fec && len(packet) > 0 && packet[0] == 0xff:
		return 0, errors.New("bad packet")
	case len(packet) == 0 || fec: // like libopus: no data asks for PLC
		v := float32(plcValue)
		if fec {
			v = fecValue
		}
		for i := range pcm {
			pcm[i] = v
		}
		return len(pcm) / d.ch, nil
	case packet[0] == 0xff:
		return 0, errors.New("bad packet")
	}
	for i := range pcm[:960*d.ch] {
		pcm[i] = float32(packet[0])
	}
	return 960, nil
}

func (d *fakeDecoder) Close() {}

type fakeEncoder struct {
	ch      int
	drained bool
}

func (e *fakeEncoder) Encode(dst []AACFrame, pcm []float32, pts int64) ([]AACFrame, error) {
	if pcm == nil {
		e.drained = true
		return dst, nil
	}
	if e.drained {
		return dst, errors.New("encode after drain")
	}
	b := make([]byte, len(pcm)/e.ch)
	for i := range b {
		b[i] = byte(int8(pcm[i*e.ch]))
	}
	return append(dst, AACFrame{PTS: pts - 1024, Payload: b}), nil
}

func (e *fakeEncoder) Config() mpeg4audio.AudioSpecificConfig {
	return mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: SampleRate, ChannelConfig: uint8(e.ch)}
}
func (e *fakeEncoder) Delay() int { return 1024 }
func (e *fakeEncoder) Close()     {}

func newFake(t testing.TB, cfg Config) *Transcoder {
	t.Helper()
	cfg.NewDecoder = func(ch int) (Decoder, error) { return &fakeDecoder{ch: ch}, nil }
	cfg.NewEncoder = func(ch, _ int) (Encoder, error) { return &fakeEncoder{ch: ch}, nil }
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

type pkt struct {
	value byte
	ts    uint32
	seq   uint16
}

// seqOf returns n packets of 20 ms from ts0/seq0 with the value v.
func seqOf(n int, v byte, ts0 uint32, seq0 uint16) []pkt {
	var ps []pkt
	for i := range n {
		ps = append(ps, pkt{v, ts0 + uint32(i*960), seq0 + uint16(i)})
	}
	return ps
}

func cat(parts ...[]pkt) []pkt {
	var all []pkt
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// run pushes the packets and flushes; it returns the output samples in
// order and checks that the PTS are continuous.
func run(t *testing.T, tr *Transcoder, ps []pkt) []int8 {
	t.Helper()
	var frames []AACFrame
	for _, p := range ps {
		payload := []byte{p.value}
		if p.value == 0xfe {
			payload = []byte{}
		}
		out, err := tr.Push(payload, p.ts, p.seq)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, out...)
	}
	out, err := tr.Flush()
	if err != nil {
		t.Fatal(err)
	}
	frames = append(frames, out...)
	var samples []int8
	for i, f := range frames {
		if want := int64(i*SamplesPerFrame - 1024); f.PTS != want {
			t.Fatalf("frame %d: PTS %d, want %d (continuous)", i, f.PTS, want)
		}
		for _, b := range f.Payload {
			samples = append(samples, int8(b))
		}
	}
	return samples
}

// runs describes samples as (value, count) runs.
type run1 struct {
	v int8
	n int
}

func runsOf(s []int8) []run1 {
	var r []run1
	for _, v := range s {
		if len(r) > 0 && r[len(r)-1].v == v {
			r[len(r)-1].n++
			continue
		}
		r = append(r, run1{v, 1})
	}
	return r
}

func TestTranscoderGaps(t *testing.T) {
	base := uint32(0xfffff000) // timestamps wrap inside every case
	wrap := uint16(65533)      // and sequence numbers in some
	cases := []struct {
		name    string
		cfg     Config
		packets []pkt
		want    []run1
		stats   Stats
	}{
		{
			name:    "continuous",
			packets: seqOf(10, 1, base, 65530),
			want:    []run1{{1, 9600}},
			stats:   Stats{Packets: 10},
		},
		{
			name:    "three lost packets: PLC, then FEC from the next",
			packets: cat(seqOf(5, 1, base, wrap), seqOf(5, 2, base+8*960, wrap+8)),
			want:    []run1{{1, 4800}, {plcValue, 1920}, {fecValue, 960}, {2, 4800}},
			stats:   Stats{Packets: 10, Lost: 3, Concealed: 2880},
		},
		{
			name:    "DTX: timestamps jump, sequence numbers do not",
			packets: cat(seqOf(5, 1, base, 1), seqOf(5, 2, base+5*960+48000, 6)),
			want:    []run1{{1, 4800}, {0, 48000}, {2, 4800}},
			stats:   Stats{Packets: 10, Silence: 48000},
		},
		{
			name:    "long loss: PLC up to MaxConceal, then silence",
			cfg:     Config{MaxConceal: 40 * time.Millisecond},
			packets: cat(seqOf(5, 1, base, 1), seqOf(5, 2, base+15*960, 16)),
			want:    []run1{{1, 4800}, {plcValue, 1920}, {0, 7680}, {2, 4800}},
			stats:   Stats{Packets: 10, Lost: 10, Concealed: 1920, Silence: 7680},
		},
		{
			name:    "loss during DTX: the lost packets' length is concealed",
			packets: cat(seqOf(5, 1, base, 1), seqOf(5, 2, base+5*960+9600, 7)),
			want:    []run1{{1, 4800}, {plcValue, 960}, {0, 8640}, {2, 4800}},
			stats:   Stats{Packets: 10, Lost: 1, Concealed: 960, Silence: 8640},
		},
		{
			name:    "late and duplicate packets are dropped",
			packets: cat(seqOf(3, 1, base, 100), []pkt{{9, base + 960, 101}, {9, base + 2*960, 102}}, seqOf(2, 2, base+3*960, 103)),
			want:    []run1{{1, 2880}, {2, 1920}},
			stats:   Stats{Packets: 5, Late: 2},
		},
		{
			name:    "empty payload is concealed",
			packets: cat(seqOf(2, 1, base, 1), []pkt{{0xfe, base + 2*960, 3}}, seqOf(2, 2, base+3*960, 4)),
			want:    []run1{{1, 1920}, {fecValue, 960}, {2, 1920}},
			stats:   Stats{Packets: 4, Bad: 1, Concealed: 960},
		},
		{
			name:    "loss before an undecodable packet: PLC, no FEC",
			packets: cat(seqOf(2, 1, base, 1), []pkt{{0xff, base + 3*960, 4}}, seqOf(2, 2, base+4*960, 5)),
			want:    []run1{{1, 1920}, {plcValue, 960}, {fecValue, 960}, {2, 1920}},
			stats:   Stats{Packets: 4, Bad: 1, Lost: 1, Concealed: 1920},
		},
		{
			name:    "undecodable packet is concealed",
			packets: cat(seqOf(2, 1, base, 1), []pkt{{0xff, base + 2*960, 3}}, seqOf(2, 2, base+3*960, 4)),
			want:    []run1{{1, 1920}, {fecValue, 960}, {2, 1920}},
			stats:   Stats{Packets: 4, Bad: 1, Concealed: 960},
		},
		{
			name:    "gap over MaxGap is a discontinuity: no fill",
			cfg:     Config{MaxGap: time.Second},
			packets: cat(seqOf(2, 1, base, 1), seqOf(2, 2, base+2*960+96000, 3)),
			want:    []run1{{1, 1920}, {2, 1920}},
			stats:   Stats{Packets: 4, Discontinuities: 1},
		},
		{
			name:    "timestamps going back: a discontinuity",
			packets: cat(seqOf(2, 1, base, 1), seqOf(2, 2, base-48000, 3)),
			want:    []run1{{1, 1920}, {2, 1920}},
			stats:   Stats{Packets: 4, Discontinuities: 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newFake(t, c.cfg)
			defer tr.Close()
			got := runsOf(run(t, tr, c.packets))
			if !equalRuns(got, c.want) {
				t.Fatalf("samples %v, want %v", got, c.want)
			}
			st := tr.Stats()
			st.Frames = 0
			if st != c.stats {
				t.Fatalf("stats %+v, want %+v", st, c.stats)
			}
		})
	}
}

func equalRuns(a, b []run1) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTranscoderClosed(t *testing.T) {
	tr := newFake(t, Config{})
	if _, err := tr.Push([]byte{1}, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Push([]byte{1}, 960, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Flush: %v, want ErrClosed", err)
	}
	tr.Close()
	tr.Close()
	if _, err := tr.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Flush after Close: %v, want ErrClosed", err)
	}
	if tr.Config().SampleRate != SampleRate || tr.Delay() != 1024 {
		t.Fatal("Config and Delay must outlive Close")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{Channels: 3}, {Bitrate: 1000}, {Channels: 1, Bitrate: 400000}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): no error", cfg)
		}
	}
}

func TestChannelsFromFmtp(t *testing.T) {
	cases := map[string]int{
		"":                                    1,
		"minptime=10;useinbandfec=1":          1,
		"minptime=10;useinbandfec=1;stereo=1": 2,
		"sprop-stereo=1":                      2,
		"stereo=0; sprop-stereo=0":            1,
		"minptime=10; Stereo = 1 ;useinbandfec=1": 2,
		"stereo=10": 1,
	}
	for fmtp, want := range cases {
		if got := ChannelsFromFmtp(fmtp); got != want {
			t.Errorf("ChannelsFromFmtp(%q) = %d, want %d", fmtp, got, want)
		}
	}
}

func TestAvailableError(t *testing.T) {
	err := Available()
	if err != nil && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Available() = %v, want nil or ErrUnavailable", err)
	}
	if err != nil {
		t.Logf("transcoding unavailable: %v", err)
		if _, err := New(Config{}); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("New without the libraries: %v, want ErrUnavailable", err)
		}
	}
}
