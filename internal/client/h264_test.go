package client

import (
	"os"
	"slices"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

const clipPath = "../../testdata/h264_cbp_320x240_25fps_3s.h264"

func loadClip(t testing.TB) [][][]byte {
	t.Helper()
	aus, err := ReadAccessUnitsFile(clipPath)
	if err != nil {
		t.Fatal(err)
	}
	return aus
}

func TestReadAccessUnits(t *testing.T) {
	aus := loadClip(t)
	if len(aus) != 75 {
		t.Fatalf("got %d access units, want 75", len(aus))
	}
	for i, au := range aus {
		if got, want := IsIDR(au), i%25 == 0; got != want {
			t.Errorf("AU %d: IDR=%v, want %v", i, got, want)
		}
		for _, n := range au {
			typ := n[0] & 0x1f
			if typ == 9 {
				t.Errorf("AU %d still holds an AUD", i)
			}
			if i%25 == 0 && typ == 7 && n[1] != 0x42 {
				t.Errorf("AU %d: SPS profile_idc %#x, want baseline 0x42", i, n[1])
			}
		}
		if i%25 == 0 {
			if typ := au[0][0] & 0x1f; typ != 7 {
				t.Errorf("AU %d starts with NAL type %d, want SPS", i, typ)
			}
		}
	}
}

func TestPaddingSEI(t *testing.T) {
	for _, size := range []int{24, 25, 100, 257, 258, 259, 260, 1000, 12500} {
		nal, err := PaddingSEI(size)
		if err != nil {
			t.Fatal(err)
		}
		if len(nal) != size && len(nal) != size-1 {
			t.Errorf("PaddingSEI(%d) is %d bytes", size, len(nal))
		}
		if nal[0] != 0x06 || nal[len(nal)-1] != 0x80 {
			t.Errorf("PaddingSEI(%d): bad header or trailing bits", size)
		}
		// payloadSize must match what follows it.
		pos, p := 2, 0
		for nal[pos] == 0xff {
			p += 255
			pos++
		}
		p += int(nal[pos])
		pos++
		if pos+p+1 != len(nal) {
			t.Errorf("PaddingSEI(%d): payloadSize %d does not fit length %d", size, p, len(nal))
		}
	}
	if _, err := PaddingSEI(10); err == nil {
		t.Error("PaddingSEI(10) did not fail")
	}
}

// packetize runs the same payloader as Publisher.WriteH264.
func packetize(aus [][][]byte, mtu uint16) []*rtp.Packet {
	var pl codecs.H264Payloader
	var out []*rtp.Packet
	seq := uint16(65500) // wraps
	for i, au := range aus {
		var payloads [][]byte
		for _, n := range au {
			payloads = append(payloads, pl.Payload(mtu, n)...)
		}
		for j, p := range payloads {
			out = append(out, &rtp.Packet{Header: rtp.Header{
				Version: 2, Marker: j == len(payloads)-1, SequenceNumber: seq, Timestamp: uint32(i * 3600),
			}, Payload: p})
			seq++
		}
	}
	return out
}

func TestAssemblerRoundTrip(t *testing.T) {
	aus := loadClip(t)
	var a h264Assembler
	var got [][][]byte
	for _, p := range packetize(aus, 300) {
		if au, ok := a.push(p); ok {
			got = append(got, au)
		}
	}
	if len(got) != len(aus) {
		t.Fatalf("got %d AUs, want %d", len(got), len(aus))
	}
	for i := range aus {
		if !slices.EqualFunc(got[i], aus[i], slices.Equal) {
			t.Fatalf("AU %d differs", i)
		}
	}
	if a.gaps != 0 {
		t.Errorf("gaps = %d", a.gaps)
	}
}

func TestAssemblerLoss(t *testing.T) {
	aus := loadClip(t)[:10]
	pkts := packetize(aus, 300)
	// Drop the second packet of AU 0 (an IDR split into FU-As).
	var a h264Assembler
	var got [][][]byte
	for i, p := range pkts {
		if i == 3 {
			continue
		}
		if au, ok := a.push(p); ok {
			got = append(got, au)
		}
	}
	if a.gaps != 1 {
		t.Errorf("gaps = %d, want 1", a.gaps)
	}
	if len(got) != len(aus)-1 {
		t.Fatalf("got %d AUs, want %d", len(got), len(aus)-1)
	}
	for i := range got {
		if !slices.EqualFunc(got[i], aus[i+1], slices.Equal) {
			t.Fatalf("AU %d differs from sent AU %d", i, i+1)
		}
	}
}

func TestAssemblerStartsMidNAL(t *testing.T) {
	aus := loadClip(t)[:3]
	pkts := packetize(aus, 300)
	// Start at the second fragment of the IDR slice of AU 0.
	start := slices.IndexFunc(pkts, func(p *rtp.Packet) bool {
		return p.Payload[0]&0x1f == 28 && p.Payload[1]&0x1f == 5 && p.Payload[1]&0x80 == 0
	})
	if start < 0 || pkts[start].Timestamp != 0 {
		t.Fatal("no middle FU-A in AU 0; clip changed?")
	}
	var a h264Assembler
	var got [][][]byte
	for _, p := range pkts[start:] {
		if au, ok := a.push(p); ok {
			got = append(got, au)
		}
	}
	if len(got) != 2 || !slices.EqualFunc(got[0], aus[1], slices.Equal) {
		t.Fatalf("got %d AUs, want the last 2", len(got))
	}
}

func TestNALTypes(t *testing.T) {
	for _, c := range []struct {
		payload    []byte
		pkt, first uint8
	}{
		{[]byte{0x65, 1}, 5, 5},
		{[]byte{0x78, 0, 2, 0x67, 0x42}, 24, 7},
		{[]byte{0x7c, 0x85, 1}, 28, 5},
		{[]byte{0x41, 1}, 1, 1},
		{nil, 0, 0},
	} {
		pkt, first := nalTypes(c.payload)
		if pkt != c.pkt || first != c.first {
			t.Errorf("nalTypes(%x) = %d, %d; want %d, %d", c.payload, pkt, first, c.pkt, c.first)
		}
	}
}

func TestOpusTestPacket(t *testing.T) {
	for _, n := range []uint16{0, 1, 255, 256, 65535} {
		got, ok := OpusTestIndex(OpusTestPacket(n))
		if !ok || got != n {
			t.Errorf("OpusTestIndex(OpusTestPacket(%d)) = %d, %v", n, got, ok)
		}
	}
	if _, ok := OpusTestIndex([]byte{0xf8, 0xff, 0xfe}); ok {
		t.Error("plain silence frame taken for a test packet")
	}
}

func TestReadH265AccessUnits(t *testing.T) {
	f, err := os.Open("../../testdata/h265_main_320x240_25fps_3s.h265")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aus, err := ReadH265AccessUnits(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(aus) != 75 {
		t.Fatalf("got %d access units, want 75", len(aus))
	}
	for i, au := range aus {
		if got, want := IsIRAP(au), i%25 == 0; got != want {
			t.Errorf("AU %d: IRAP=%v, want %v", i, got, want)
		}
		if i%25 == 0 && h265NALType(au[0]) != 32 {
			t.Errorf("AU %d starts with NAL type %d, want VPS", i, h265NALType(au[0]))
		}
		for _, n := range au {
			if h265NALType(n) == 35 || len(n) == 0 {
				t.Errorf("AU %d holds an AUD or an empty NAL unit", i)
			}
		}
	}
}

func TestH265Assembler(t *testing.T) {
	f, err := os.Open("../../testdata/h265_main_320x240_25fps_3s.h265")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	aus, err := ReadH265AccessUnits(f)
	if err != nil {
		t.Fatal(err)
	}
	var pl codecs.H265Payloader
	asm := h264Assembler{h265: true}
	seq := uint16(1)
	got := 0
	for i, au := range aus {
		var payloads [][]byte
		for _, n := range au {
			payloads = append(payloads, pl.Payload(1200, n)...)
		}
		for k, p := range payloads {
			out, ok := asm.push(&rtp.Packet{Header: rtp.Header{SequenceNumber: seq, Timestamp: uint32(i * 3600), Marker: k == len(payloads)-1}, Payload: p})
			seq++
			if !ok {
				continue
			}
			if !slices.EqualFunc(out, aus[got], slices.Equal) {
				t.Fatalf("access unit %d differs", got)
			}
			got++
		}
	}
	if got != len(aus) {
		t.Fatalf("%d access units of %d", got, len(aus))
	}
}
