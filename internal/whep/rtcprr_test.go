package whep

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/pion/rtcp"
)

func marshalRTCP(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTakeRR: the receiver report read in place equals pion's reading of
// it; source descriptions are dropped; everything else is left, in order,
// for rtcp.Unmarshal, which reads it as it would have.
func TestTakeRR(t *testing.T) {
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{
		{SSRC: 1111, FractionLost: 12, TotalLost: 0xfffffe & 0xffffff, LastSequenceNumber: 0x1_0005, Jitter: 90, LastSenderReport: 0xabcdef01, Delay: 6553},
		{SSRC: 2222, FractionLost: 0, TotalLost: 3, LastSequenceNumber: 77, Jitter: 4, LastSenderReport: 5, Delay: 6},
	}}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "viewer"}}}}}
	pli := &rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 1111}
	nack := &rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 1111, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{5, 7})}
	rr2 := &rtcp.ReceiverReport{SSRC: 9}
	cases := []struct {
		name    string
		in      []rtcp.Packet
		rest    []rtcp.Packet // what rtcp.Unmarshal should find left
		wantsRR bool
	}{
		{"RR", []rtcp.Packet{rr}, nil, true},
		{"RR+SDES (a browser's compound)", []rtcp.Packet{rr, sdes}, nil, true},
		{"RR+PLI+NACK", []rtcp.Packet{rr, pli, nack}, []rtcp.Packet{pli, nack}, true},
		{"PLI alone", []rtcp.Packet{pli}, []rtcp.Packet{pli}, false},
		{"two RRs: the second left", []rtcp.Packet{rr, rr2}, []rtcp.Packet{rr2}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got rtcp.ReceiverReport
			rest, ok := takeRR(marshalRTCP(t, c.in...), &got)
			if ok != c.wantsRR {
				t.Fatalf("receiver report read: %v, want %v", ok, c.wantsRR)
			}
			if ok && !reflect.DeepEqual(&got, rr) {
				t.Errorf("read %+v, want %+v", got, *rr)
			}
			if len(c.rest) == 0 {
				if len(rest) != 0 {
					t.Fatalf("%d bytes left, want none", len(rest))
				}
				return
			}
			left, err := rtcp.Unmarshal(rest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(marshalRTCP(t, left...), marshalRTCP(t, c.rest...)) {
				t.Errorf("left %v, want %v", left, c.rest)
			}
		})
	}

	// A report that says it has more blocks than it holds is left to
	// pion (which refuses it), not read.
	bad := marshalRTCP(t, rr)
	bad[0] = bad[0]&0xe0 | 5
	var got rtcp.ReceiverReport
	if rest, ok := takeRR(bad, &got); ok || len(rest) != len(bad) {
		t.Errorf("a short report: read %v, %d of %d bytes left", ok, len(rest), len(bad))
	}

	// Reading a browser's compound allocates nothing once warm.
	raw := marshalRTCP(t, rr, sdes)
	buf := make([]byte, len(raw))
	allocs := testing.AllocsPerRun(100, func() {
		copy(buf, raw)
		_, _ = takeRR(buf, &got)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per compound packet, want 0", allocs)
	}
}

// FuzzTakeRR: RTCP from the network never makes takeRR panic, and a
// report it reads is the one pion reads from the same bytes.
func FuzzTakeRR(f *testing.F) {
	f.Add(marshalRTCP(f, &rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}}}, &rtcp.PictureLossIndication{}))
	f.Add([]byte{0x81, 201, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		orig := append([]byte(nil), b...)
		var got rtcp.ReceiverReport
		rest, ok := takeRR(b, &got)
		if len(rest) > len(orig) {
			t.Fatalf("%d bytes left of %d", len(rest), len(orig))
		}
		if !ok {
			return
		}
		pkts, err := rtcp.Unmarshal(orig)
		if err != nil {
			return // pion refuses the compound for another of its parts
		}
		for _, p := range pkts {
			if want, isRR := p.(*rtcp.ReceiverReport); isRR {
				want.ProfileExtensions = nil
				if len(want.Reports) == 0 {
					want.Reports = got.Reports[:0]
				}
				if !reflect.DeepEqual(&got, want) {
					t.Fatalf("read %+v, pion %+v", got, *want)
				}
				return
			}
		}
		t.Fatal("read a receiver report pion does not see")
	})
}
