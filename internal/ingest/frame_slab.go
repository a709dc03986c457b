// The frame writer's packet slab (as whip's packetSlab; to be one type
// with ingest's own when the read loops move here).

package ingest

import "github.com/sluice-media/sluice/internal/hub"

// frameSlab hands out hub packets and payload copies carved from larger
// blocks: one allocation per frameSlabPackets packets and per
// frameSlabBytes of payload, not two per packet. A block lives as long as
// any packet in it (in the ring, the GOP cache, a recorder's queue), which
// the ring's first-in first-out order keeps to about one block more than
// the packets held. Packets and payloads are never reused: the ring shares
// them with every reader.
type frameSlab struct {
	pkts []hub.Packet
	data []byte
}

const (
	frameSlabPackets = 64
	frameSlabBytes   = 64 << 10
)

// packet returns a new packet holding a copy of payload.
func (s *frameSlab) packet(payload []byte) *hub.Packet {
	if len(s.pkts) == 0 {
		s.pkts = make([]hub.Packet, frameSlabPackets)
	}
	p := &s.pkts[0]
	s.pkts = s.pkts[1:]
	n := len(payload)
	if len(s.data) < n {
		s.data = make([]byte, max(frameSlabBytes, n))
	}
	p.Payload = s.data[:n:n] // full: an append copies instead of writing into the next payload
	s.data = s.data[n:]
	copy(p.Payload, payload)
	return p
}
