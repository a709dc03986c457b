package frame

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// pkt is one packet of a table case; seq is relative to the case's start,
// so a skipped number is a loss.
type pkt struct {
	seq     uint16
	ts      uint32
	marker  bool
	payload []byte
}

// want is one frame a case must produce.
type want struct {
	ts    uint32
	key   bool
	nalus [][]byte // H264/H265
	data  []byte   // VP8/Opus
}

type depCase struct {
	name string
	pkts []pkt
	want []want
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

// stap builds an aggregation packet body: 16-bit size and unit, repeated.
func stap(hdr []byte, units ...[]byte) []byte {
	out := slices.Clone(hdr)
	for _, u := range units {
		out = append(out, byte(len(u)>>8), byte(len(u)))
		out = append(out, u...)
	}
	return out
}

var (
	h264SPSNALU = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8} // the clip's
	h264PPSNALU = []byte{0x68, 0xce, 0x3c, 0x80}
	h264AUDNALU = []byte{0x09, 0xf0}
	h264IDRNALU = []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	h264PNALU   = []byte{0x41, 0x9a, 0x02, 0x03}
	h264P2NALU  = []byte{0x41, 0x9a, 0x04, 0x05}
	// The IDR above split into three FU-A fragments.
	h264FU1 = []byte{0x7c, 0x85, 0x88, 0x84}
	h264FU2 = []byte{0x7c, 0x05, 0x00, 0x33}
	h264FU3 = []byte{0x7c, 0x45, 0xff}
	// A P slice continuation (first_mb_in_slice != 0).
	h264PMid = []byte{0x41, 0x1a, 0x02}
)

var h264Cases = []depCase{
	{
		name: "single NAL units",
		pkts: []pkt{{0, 3000, false, h264SPSNALU}, {1, 3000, false, h264PPSNALU}, {2, 3000, true, h264IDRNALU}, {3, 6000, true, h264PNALU}},
		want: []want{{ts: 3000, key: true, nalus: [][]byte{h264SPSNALU, h264PPSNALU, h264IDRNALU}}, {ts: 6000, nalus: [][]byte{h264PNALU}}},
	},
	{
		name: "STAP-A and FU-A",
		pkts: []pkt{{0, 0, false, stap([]byte{0x78}, h264SPSNALU, h264PPSNALU)}, {1, 0, false, h264FU1}, {2, 0, false, h264FU2}, {3, 0, true, h264FU3}},
		want: []want{{ts: 0, key: true, nalus: [][]byte{h264SPSNALU, h264PPSNALU, h264IDRNALU}}},
	},
	{
		name: "loss inside FU-A drops until the next keyframe",
		pkts: []pkt{
			{0, 0, false, stap([]byte{0x78}, h264SPSNALU, h264PPSNALU)}, {1, 0, false, h264FU1}, {3, 0, true, h264FU3},
			{4, 3000, true, h264PNALU},
			{5, 6000, false, stap([]byte{0x78}, h264SPSNALU, h264PPSNALU)}, {6, 6000, true, h264IDRNALU},
			{7, 9000, true, h264PNALU},
		},
		want: []want{
			{ts: 6000, key: true, nalus: [][]byte{h264SPSNALU, h264PPSNALU, h264IDRNALU}},
			{ts: 9000, nalus: [][]byte{h264PNALU}},
		},
	},
	{
		// The last packet both ends the access unit before it and
		// completes its own: that one comes out with the next packet.
		name: "missing marker ends the access unit at the next timestamp",
		pkts: []pkt{{0, 0, false, h264SPSNALU}, {1, 0, false, h264PPSNALU}, {2, 0, false, h264IDRNALU}, {3, 3000, false, h264PNALU}, {4, 6000, true, h264P2NALU}, {5, 9000, false, h264AUDNALU}},
		want: []want{
			{ts: 0, key: true, nalus: [][]byte{h264SPSNALU, h264PPSNALU, h264IDRNALU}},
			{ts: 3000, nalus: [][]byte{h264PNALU}},
			{ts: 6000, nalus: [][]byte{h264P2NALU}},
		},
	},
	{
		name: "cached parameter sets go before a bare IDR, after the delimiter",
		pkts: []pkt{
			{0, 0, false, h264SPSNALU}, {1, 0, false, h264PPSNALU}, {2, 0, true, h264IDRNALU},
			{3, 3000, false, h264AUDNALU}, {4, 3000, true, h264IDRNALU},
		},
		want: []want{
			{ts: 0, key: true, nalus: [][]byte{h264SPSNALU, h264PPSNALU, h264IDRNALU}},
			{ts: 3000, key: true, nalus: [][]byte{h264AUDNALU, h264SPSNALU, h264PPSNALU, h264IDRNALU}},
		},
	},
	{
		name: "start in the middle of a fragmented NAL unit",
		pkts: []pkt{{0, 0, false, h264FU2}, {1, 0, true, h264FU3}, {2, 3000, true, h264PNALU}, {3, 6000, true, h264IDRNALU}},
		want: []want{{ts: 6000, key: true, nalus: [][]byte{h264IDRNALU}}},
	},
	{
		name: "after a loss, a packet that does not start a picture is not trusted",
		pkts: []pkt{
			{0, 0, true, h264IDRNALU},
			{2, 3000, true, h264PMid}, // the first slice was lost
			{3, 6000, true, h264IDRNALU},
		},
		want: []want{{ts: 0, key: true, nalus: [][]byte{h264IDRNALU}}, {ts: 6000, key: true, nalus: [][]byte{h264IDRNALU}}},
	},
	{
		name: "malformed STAP-A and unsupported types are dropped",
		pkts: []pkt{
			{0, 0, true, []byte{0x78, 0x00, 0x09, 0x67}},
			{1, 3000, true, []byte{0x79, 0x00}}, // STAP-B
			{2, 6000, true, h264IDRNALU},
		},
		want: []want{{ts: 6000, key: true, nalus: [][]byte{h264IDRNALU}}},
	},
	{
		name: "unmarked access unit then a marked one in one packet",
		pkts: []pkt{{0, 0, false, h264IDRNALU}, {1, 3000, true, h264PNALU}, {2, 6000, true, h264P2NALU}, {3, 9000, false, h264AUDNALU}},
		want: []want{
			{ts: 0, key: true, nalus: [][]byte{h264IDRNALU}},
			{ts: 3000, nalus: [][]byte{h264PNALU}},
			{ts: 6000, nalus: [][]byte{h264P2NALU}},
		},
	},
}

func h265NALU(typ byte, body ...byte) []byte { return append([]byte{typ << 1, 1}, body...) }

var (
	h265VPSNALU = h265NALU(h265VPS, 0x0c, 0x01)
	h265SPSNALU = h265NALU(h265SPS, 0x01, 0x01)
	h265PPSNALU = h265NALU(h265PPS, 0xc1, 0x72)
	h265IDRNALU = h265NALU(19, 0xaf, 0x08, 0x40, 0x11, 0x22)
	h265CRANALU = h265NALU(21, 0xaf, 0x08, 0x40)
	h265PNALU   = h265NALU(1, 0xd0, 0x01, 0x02)
	h265AUDNALU = h265NALU(h265AUD, 0x50)
	// The IDR above in three fragments: payload header type 49, FU header.
	h265FU1 = []byte{49 << 1, 1, 0x80 | 19, 0xaf, 0x08}
	h265FU2 = []byte{49 << 1, 1, 19, 0x40}
	h265FU3 = []byte{49 << 1, 1, 0x40 | 19, 0x11, 0x22}
)

var h265Cases = []depCase{
	{
		name: "single NAL units",
		pkts: []pkt{{0, 0, false, h265VPSNALU}, {1, 0, false, h265SPSNALU}, {2, 0, false, h265PPSNALU}, {3, 0, true, h265IDRNALU}, {4, 3000, true, h265PNALU}},
		want: []want{{ts: 0, key: true, nalus: [][]byte{h265VPSNALU, h265SPSNALU, h265PPSNALU, h265IDRNALU}}, {ts: 3000, nalus: [][]byte{h265PNALU}}},
	},
	{
		name: "AP and FU",
		pkts: []pkt{{0, 0, false, stap([]byte{48 << 1, 1}, h265VPSNALU, h265SPSNALU, h265PPSNALU)}, {1, 0, false, h265FU1}, {2, 0, false, h265FU2}, {3, 0, true, h265FU3}},
		want: []want{{ts: 0, key: true, nalus: [][]byte{h265VPSNALU, h265SPSNALU, h265PPSNALU, h265IDRNALU}}},
	},
	{
		name: "loss drops until the next IRAP; cached parameter sets before a bare CRA",
		pkts: []pkt{
			{0, 0, false, stap([]byte{48 << 1, 1}, h265VPSNALU, h265SPSNALU, h265PPSNALU)}, {1, 0, false, h265FU1}, {3, 0, true, h265FU3},
			{4, 3000, true, h265PNALU},
			{5, 6000, false, h265AUDNALU}, {6, 6000, true, h265CRANALU},
		},
		want: []want{{ts: 6000, key: true, nalus: [][]byte{h265AUDNALU, h265VPSNALU, h265SPSNALU, h265PPSNALU, h265CRANALU}}},
	},
	{
		name: "PACI and truncated AP are dropped",
		pkts: []pkt{{0, 0, true, []byte{50 << 1, 1, 0, 0}}, {1, 3000, true, []byte{48 << 1, 1, 0, 9, 1}}, {2, 6000, true, h265IDRNALU}},
		want: []want{{ts: 6000, key: true, nalus: [][]byte{h265IDRNALU}}},
	},
}

var (
	vp8Key   = []byte{0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, 0xaa} // 320x240 key frame
	vp8Inter = []byte{0x10, 0x01, 0x02, 0x03}
	vp8Cont  = []byte{0x00, 0xbb, 0xcc}
	// With an extended descriptor: X, I with a 15-bit picture ID.
	vp8KeyExt = []byte{0x90, 0x80, 0x81, 0x23, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
)

var vp8Cases = []depCase{
	{
		name: "key frame in two packets, then an inter frame",
		pkts: []pkt{{0, 0, false, vp8Key}, {1, 0, true, vp8Cont}, {2, 3000, true, vp8Inter}},
		want: []want{{ts: 0, key: true, data: cat(vp8Key[1:], vp8Cont[1:])}, {ts: 3000, data: vp8Inter[1:]}},
	},
	{
		name: "extended descriptor",
		pkts: []pkt{{0, 0, true, vp8KeyExt}},
		want: []want{{ts: 0, key: true, data: vp8KeyExt[4:]}},
	},
	{
		name: "loss drops until the next key frame",
		pkts: []pkt{{0, 0, false, vp8Key}, {2, 0, true, vp8Cont}, {3, 3000, true, vp8Inter}, {4, 6000, true, vp8Key}},
		want: []want{{ts: 6000, key: true, data: vp8Key[1:]}},
	},
	{
		name: "starts with a continuation",
		pkts: []pkt{{0, 0, true, vp8Cont}, {1, 3000, true, vp8Key}},
		want: []want{{ts: 3000, key: true, data: vp8Key[1:]}},
	},
}

var opusCases = []depCase{
	{
		name: "every packet is a frame, loss or not",
		pkts: []pkt{{0, 0, true, []byte{0xfc, 1}}, {1, 960, false, []byte{0xfc, 2}}, {5, 4800, false, []byte{0xfc, 3}}, {6, 5760, false, nil}},
		want: []want{{ts: 0, key: true, data: []byte{0xfc, 1}}, {ts: 960, key: true, data: []byte{0xfc, 2}}, {ts: 4800, key: true, data: []byte{0xfc, 3}}},
	},
}

func run(d Depacketizer, pkts []pkt, base uint16) []*media.Frame {
	var out []*media.Frame
	for _, p := range pkts {
		f, ok := d.Push(&hub.Packet{SequenceNumber: base + p.seq, Timestamp: p.ts, Marker: p.marker, Payload: p.payload})
		if ok {
			out = append(out, f)
		}
	}
	return out
}

func checkCases(t *testing.T, newDep func() Depacketizer, cases []depCase) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Run from two starting points: one wraps the sequence number.
			for _, base := range []uint16{100, 65533} {
				got := run(newDep(), c.pkts, base)
				if len(got) != len(c.want) {
					t.Fatalf("seq base %d: %d frames, want %d", base, len(got), len(c.want))
				}
				for i, w := range c.want {
					f := got[i]
					if f.RTPTimestamp != w.ts || f.Keyframe != w.key {
						t.Errorf("frame %d: ts %d key %v, want ts %d key %v", i, f.RTPTimestamp, f.Keyframe, w.ts, w.key)
					}
					if w.nalus != nil && !slices.EqualFunc(f.NALUs, w.nalus, bytes.Equal) {
						t.Errorf("frame %d: NAL units\n%x\nwant\n%x", i, f.NALUs, w.nalus)
					}
					if w.data != nil && !bytes.Equal(f.Payload, w.data) {
						t.Errorf("frame %d: payload %x, want %x", i, f.Payload, w.data)
					}
				}
			}
		})
	}
}

func TestH264Cases(t *testing.T) { checkCases(t, func() Depacketizer { return NewH264() }, h264Cases) }
func TestH265Cases(t *testing.T) { checkCases(t, func() Depacketizer { return NewH265() }, h265Cases) }
func TestVP8Cases(t *testing.T)  { checkCases(t, func() Depacketizer { return NewVP8() }, vp8Cases) }
func TestOpusCases(t *testing.T) { checkCases(t, func() Depacketizer { return NewOpus() }, opusCases) }

// readAnnexB splits an Annex-B file into access units on its delimiters
// (H264 type 9 or H265 type 35), which it drops.
func readAnnexB(t testing.TB, path string, isAUD func([]byte) bool) [][][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][][]byte
	for _, n := range bytes.Split(b, []byte{0, 0, 1}) {
		n = bytes.TrimRight(n, "\x00") // the zero of a four-byte start code
		if len(n) == 0 {
			continue
		}
		if isAUD(n) {
			aus = append(aus, nil)
			continue
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], n)
	}
	return aus
}

type payloader interface {
	Payload(mtu uint16, nalu []byte) [][]byte
}

// packetize turns access units into hub packets the way pion publishers
// do, one payloader call per NAL unit, marker on the last packet.
func packetize(aus [][][]byte, pl payloader, mtu uint16) []*hub.Packet {
	var out []*hub.Packet
	seq := uint16(65000)
	for i, au := range aus {
		var payloads [][]byte
		for _, n := range au {
			payloads = append(payloads, pl.Payload(mtu, n)...)
		}
		for k, p := range payloads {
			out = append(out, &hub.Packet{SequenceNumber: seq, Timestamp: uint32(i * 3600), Marker: k == len(payloads)-1, Payload: p})
			seq++
		}
	}
	return out
}

func TestH264Clip(t *testing.T) {
	aus := readAnnexB(t, "../../testdata/h264_cbp_320x240_25fps_3s.h264", func(n []byte) bool { return n[0]&0x1f == 9 })
	if len(aus) != 75 {
		t.Fatalf("%d access units in the clip", len(aus))
	}
	d, err := New(media.Codec{MimeType: "video/H264", ClockRate: 90000}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkClip(t, d, aus, packetize(aus, &codecs.H264Payloader{}, 1200), 25)
	info, ok := d.(VideoInfoer).VideoInfo()
	if want := (media.VideoInfo{Width: 320, Height: 240, Profile: "Constrained Baseline", Level: "3.1"}); !ok || info != want {
		t.Errorf("VideoInfo = %+v, want %+v", info, want)
	}
}

func TestH265Clip(t *testing.T) {
	aus := readAnnexB(t, "../../testdata/h265_main_320x240_25fps_3s.h265", func(n []byte) bool { return n[0]>>1&0x3f == 35 })
	if len(aus) != 75 {
		t.Fatalf("%d access units in the clip", len(aus))
	}
	d := NewH265()
	checkClip(t, d, aus, packetize(aus, &codecs.H265Payloader{}, 1200), 25)
	info, ok := d.VideoInfo()
	if want := (media.VideoInfo{Width: 320, Height: 240, Profile: "Main", Level: "2"}); !ok || info != want {
		t.Errorf("VideoInfo = %+v, want %+v", info, want)
	}
}

func checkClip(t *testing.T, d Depacketizer, aus [][][]byte, pkts []*hub.Packet, gop int) {
	t.Helper()
	var got []*media.Frame
	for _, p := range pkts {
		if f, ok := d.Push(p); ok {
			got = append(got, f)
		}
	}
	if len(got) != len(aus) {
		t.Fatalf("%d frames from %d packets, want %d", len(got), len(pkts), len(aus))
	}
	for i, f := range got {
		if !slices.EqualFunc(f.NALUs, aus[i], bytes.Equal) {
			t.Fatalf("frame %d differs: %d NAL units, want %d", i, len(f.NALUs), len(aus[i]))
		}
		if f.Keyframe != (i%gop == 0) {
			t.Errorf("frame %d keyframe = %v", i, f.Keyframe)
		}
		if want := time.Duration(i) * 40 * time.Millisecond; f.PTS() != want {
			t.Errorf("frame %d PTS %v, want %v", i, f.PTS(), want)
		}
	}
}

func TestInfoSniffer(t *testing.T) {
	s := NewInfoSniffer(media.Codec{MimeType: "video/H264"})
	if _, ok := s.Sniff(h264PNALU); ok {
		t.Fatal("info from a P slice")
	}
	info, ok := s.Sniff(stap([]byte{0x78}, h264SPSNALU, h264PPSNALU))
	if want := (media.VideoInfo{Width: 320, Height: 240, Profile: "Constrained Baseline", Level: "3.1"}); !ok || info != want {
		t.Fatalf("Sniff = %+v %v, want %+v", info, ok, want)
	}
	if _, ok := s.Sniff(h264SPSNALU); ok {
		t.Fatal("the same SPS reported twice")
	}
	v := NewInfoSniffer(media.Codec{MimeType: "video/VP8"})
	if info, ok := v.Sniff(vp8KeyExt); !ok || info.Width != 320 || info.Height != 240 {
		t.Fatalf("VP8 Sniff = %+v %v", info, ok)
	}
	if NewInfoSniffer(media.Codec{MimeType: "audio/opus"}) != nil {
		t.Fatal("sniffer for audio")
	}
}

// stubClock gives every RTP timestamp a wall time of base + ts/90 ms.
type stubClock struct{ base time.Time }

func (c stubClock) WallClock(_ int, ts uint32) (time.Time, bool) {
	return c.base.Add(time.Duration(ts) * time.Second / 90000), true
}

func TestTiming(t *testing.T) {
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	d, _ := New(media.Codec{MimeType: "video/H264", ClockRate: 90000}, 3, stubClock{base})
	start := uint32(1<<32 - 3000) // wraps after the first frame
	var got []*media.Frame
	for i := range 3 {
		if f, ok := d.Push(&hub.Packet{SequenceNumber: uint16(i), Timestamp: start + uint32(i)*3000, Marker: true, Payload: h264IDRNALU}); ok {
			got = append(got, f)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d frames", len(got))
	}
	for i, f := range got {
		if f.Track != 3 || f.Time != int64(i)*3000 || f.PTS() != time.Duration(i)*time.Second/30 {
			t.Errorf("frame %d: track %d time %d pts %v", i, f.Track, f.Time, f.PTS())
		}
		if want := base.Add(time.Duration(f.RTPTimestamp) * time.Second / 90000); !f.Wall.Equal(want) {
			t.Errorf("frame %d: wall %v, want %v", i, f.Wall, want)
		}
	}
	if _, err := New(media.Codec{MimeType: "video/VP9"}, 0, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("depacketizer for VP9: %v", err)
	}
}

func TestFmtpParameterSets(t *testing.T) {
	// sprop-parameter-sets carries the SPS and PPS: a bare IDR gets them.
	fmtp := "packetization-mode=1;sprop-parameter-sets=Z0LAH9oFB+wEQAAAAwBAAAAMg8YMqA==,aM48gA==;profile-level-id=42e01f"
	d, _ := New(media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: fmtp}, 0, nil)
	f, ok := d.Push(&hub.Packet{Marker: true, Payload: h264IDRNALU})
	if !ok || !slices.EqualFunc(f.NALUs, [][]byte{h264SPSNALU, h264PPSNALU, h264IDRNALU}, bytes.Equal) {
		t.Fatalf("NAL units %x", f.NALUs)
	}
	if info, ok := d.(VideoInfoer).VideoInfo(); !ok || info.Width != 320 {
		t.Errorf("VideoInfo from sprop-parameter-sets: %+v %v", info, ok)
	}
}

// encodeFuzz turns a packet list into fuzz input: per packet a flags byte
// (bit 0 marker, bit 1 next timestamp, bit 2 skip a sequence number), a
// length byte and the payload.
func encodeFuzz(pkts []pkt) []byte {
	var out []byte
	var lastSeq uint16
	var lastTS uint32
	for i, p := range pkts {
		var fl byte
		if p.marker {
			fl |= 1
		}
		if i > 0 && p.ts != lastTS {
			fl |= 2
		}
		if i > 0 && p.seq != lastSeq+1 {
			fl |= 4
		}
		lastSeq, lastTS = p.seq, p.ts
		out = append(out, fl, byte(len(p.payload)))
		out = append(out, p.payload...)
	}
	return out
}

func decodeFuzz(b []byte) []*hub.Packet {
	var out []*hub.Packet
	seq, ts := uint16(65530), uint32(0)
	for len(b) >= 2 {
		fl, n := b[0], int(b[1])
		b = b[2:]
		n = min(n, len(b))
		if fl&2 != 0 {
			ts += 3000
		}
		if fl&4 != 0 {
			seq++
		}
		out = append(out, &hub.Packet{SequenceNumber: seq, Timestamp: ts, Marker: fl&1 != 0, Payload: b[:n:n]})
		seq++
		b = b[n:]
	}
	return out
}

// fuzzDep checks that no packet sequence makes a depacketizer panic, hand
// out an empty frame, or change the payloads it was given.
func fuzzDep(f *testing.F, cases []depCase, newDep func() Depacketizer) {
	for _, c := range cases {
		f.Add(encodeFuzz(c.pkts))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := slices.Clone(b)
		d := newDep()
		for _, p := range decodeFuzz(b) {
			fr, ok := d.Push(p)
			if !ok {
				continue
			}
			if len(fr.NALUs) == 0 && len(fr.Payload) == 0 {
				t.Fatal("empty frame")
			}
			for _, n := range fr.NALUs {
				if len(n) == 0 {
					t.Fatal("empty NAL unit")
				}
			}
		}
		if !bytes.Equal(b, orig) {
			t.Fatal("depacketizer modified its input")
		}
		if vi, ok := d.(VideoInfoer); ok {
			vi.VideoInfo()
		}
	})
}

func FuzzH264Depacketizer(f *testing.F) {
	fuzzDep(f, h264Cases, func() Depacketizer { return NewH264() })
}

func FuzzH265Depacketizer(f *testing.F) {
	fuzzDep(f, h265Cases, func() Depacketizer { return NewH265() })
}

func FuzzVP8Depacketizer(f *testing.F) {
	fuzzDep(f, vp8Cases, func() Depacketizer { return NewVP8() })
}

func FuzzOpusDepacketizer(f *testing.F) {
	fuzzDep(f, opusCases, func() Depacketizer { return NewOpus() })
}

// FuzzInfoSniffer feeds arbitrary payloads, SPS parsing included.
func FuzzInfoSniffer(f *testing.F) {
	f.Add(h264SPSNALU, byte(0))
	f.Add(stap([]byte{0x78}, h264SPSNALU, h264PPSNALU), byte(0))
	f.Add(h265SPSNALU, byte(1))
	f.Add(vp8Key, byte(2))
	f.Fuzz(func(t *testing.T, p []byte, which byte) {
		mime := []string{"video/H264", "video/H265", "video/VP8"}[int(which)%3]
		NewInfoSniffer(media.Codec{MimeType: mime}).Sniff(p)
	})
}

func BenchmarkDepacketize(b *testing.B) {
	h264 := readAnnexB(b, "../../testdata/h264_cbp_320x240_25fps_3s.h264", func(n []byte) bool { return n[0]&0x1f == 9 })
	h265 := readAnnexB(b, "../../testdata/h265_main_320x240_25fps_3s.h265", func(n []byte) bool { return n[0]>>1&0x3f == 35 })
	opus := make([]*hub.Packet, 1000)
	for i := range opus {
		opus[i] = &hub.Packet{SequenceNumber: uint16(i), Timestamp: uint32(i * 960), Marker: true, Payload: make([]byte, 120)}
	}
	for _, c := range []struct {
		name string
		pkts []*hub.Packet
		dep  func() Depacketizer
	}{
		{"H264-mtu1200", packetize(h264, &codecs.H264Payloader{}, 1200), func() Depacketizer { return NewH264() }},
		{"H264-mtu300", packetize(h264, &codecs.H264Payloader{}, 300), func() Depacketizer { return NewH264() }},
		{"H265-mtu1200", packetize(h265, &codecs.H265Payloader{}, 1200), func() Depacketizer { return NewH265() }},
		{"Opus", opus, func() Depacketizer { return NewOpus() }},
	} {
		b.Run(c.name, func(b *testing.B) {
			// Sequence numbers continue across passes over the clip.
			pkts := make([]hub.Packet, len(c.pkts))
			for i, p := range c.pkts {
				pkts[i] = *p
			}
			d := c.dep()
			frames := 0
			seq := pkts[0].SequenceNumber
			ts := uint32(0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := &pkts[i]
				p.SequenceNumber = seq
				seq++
				if _, ok := d.Push(p); ok {
					frames++
				}
				if i++; i == len(pkts) {
					i = 0
					ts += 1 << 20
					for k := range pkts {
						pkts[k].Timestamp = c.pkts[k].Timestamp + ts
					}
				}
			}
			b.ReportMetric(float64(frames)/float64(b.N), "frames/packet")
		})
	}
}

// BenchmarkPionH264 is the reference: pion's depacketizer on the same
// packets, which copies every NAL unit and builds no access units.
func BenchmarkPionH264(b *testing.B) {
	aus := readAnnexB(b, "../../testdata/h264_cbp_320x240_25fps_3s.h264", func(n []byte) bool { return n[0]&0x1f == 9 })
	pkts := packetize(aus, &codecs.H264Payloader{}, 1200)
	var d codecs.H264Packet
	d.IsAVC = true
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_, _ = d.Unmarshal(pkts[i].Payload)
		if i++; i == len(pkts) {
			i = 0
		}
	}
}
