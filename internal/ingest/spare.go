package ingest

import "github.com/sluice-media/sluice/internal/hub"

// spares are a track's packets for its reorder window, used again once
// released: the hub copies each packet it takes into memory of its own
// (hub.Writer.Write, which reuses that memory as the ring laps it), so
// in steady state a packet costs no allocation from the network to the
// ring. At most maxSpares are kept; more (a window that held many and
// let them go at once) are left to the collector.
type spares struct{ free []*hub.Packet }

const maxSpares = 256

// packet returns a packet holding a copy of payload, its other fields
// zero.
func (s *spares) packet(payload []byte) *hub.Packet {
	var p *hub.Packet
	if n := len(s.free); n > 0 {
		p = s.free[n-1]
		s.free[n-1] = nil
		s.free = s.free[:n-1]
	} else {
		p = new(hub.Packet)
	}
	buf := p.Payload[:0]
	*p = hub.Packet{Payload: append(buf, payload...)}
	return p
}

// put takes back a packet nothing refers to any more.
func (s *spares) put(p *hub.Packet) {
	if len(s.free) < maxSpares {
		s.free = append(s.free, p)
	}
}
