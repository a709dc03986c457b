package ingest

import (
	"bytes"
	"testing"

	"github.com/sluice-media/sluice/internal/hub"
)

// TestPacketSlab: each packet gets its own payload copy, which an append
// cannot spill into the next, and a run of packets costs two allocations
// per block, not two per packet.
func TestPacketSlab(t *testing.T) {
	var s packetSlab
	var got []*hub.Packet
	for i := range 3 * slabPackets {
		got = append(got, s.packet(bytes.Repeat([]byte{byte(i)}, 1+i%1200)))
	}
	big := s.packet(make([]byte, slabBytes+1)) // larger than a block: still whole
	if len(big.Payload) != slabBytes+1 {
		t.Fatalf("payload of %d bytes, want %d", len(big.Payload), slabBytes+1)
	}
	_ = append(got[0].Payload, 0xff)
	for i, p := range got {
		if want := bytes.Repeat([]byte{byte(i)}, 1+i%1200); !bytes.Equal(p.Payload, want) || cap(p.Payload) != len(want) {
			t.Fatalf("packet %d: %d bytes (cap %d), want %d of %d", i, len(p.Payload), cap(p.Payload), len(want), i)
		}
		if i > 0 && p == got[i-1] {
			t.Fatal("a packet handed out twice")
		}
	}
	payload := make([]byte, 1000)
	// AllocsPerRun rounds down: 0 is fewer than one per packet.
	if allocs := testing.AllocsPerRun(10*slabPackets, func() { s.packet(payload) }); allocs != 0 {
		t.Errorf("%v allocations per packet, want 0", allocs)
	}
}
