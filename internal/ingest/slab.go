package ingest

import "github.com/sluice-media/sluice/internal/hub"

// packetSlab hands out packets and payload copies carved from larger
// blocks: one allocation per slabPackets packets and per slabBytes of
// payload, not two per packet. A block lives as long as any packet in it
// (in the ring, the GOP cache, a recorder's queue), which the ring's
// first-in first-out order keeps to about one block more than the packets
// held. Packets and payloads are never reused. RTP tracks and frame
// tracks (FrameTrack) carve theirs the same way.
type packetSlab struct {
	pkts []hub.Packet
	data []byte
}

const (
	slabPackets = 64
	slabBytes   = 64 << 10
)

// packet returns a new packet holding a copy of payload.
func (s *packetSlab) packet(payload []byte) *hub.Packet {
	if len(s.pkts) == 0 {
		s.pkts = make([]hub.Packet, slabPackets)
	}
	p := &s.pkts[0]
	s.pkts = s.pkts[1:]
	n := len(payload)
	if len(s.data) < n {
		s.data = make([]byte, max(slabBytes, n))
	}
	p.Payload = s.data[:n:n] // full: an append copies instead of writing into the next payload
	s.data = s.data[n:]
	copy(p.Payload, payload)
	return p
}
