package frame

import (
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// Opus passes Opus packets through as frames: RFC 7587 §4.2 puts exactly
// one Opus packet in each RTP payload. Every frame is a keyframe; a loss
// costs only the lost packets.
type Opus struct{ base }

// NewOpus returns an Opus depacketizer without wall clock, for track 0 at
// 48 kHz.
func NewOpus() *Opus { return &Opus{base: base{clockRate: 48000}} }

// Push implements Depacketizer.
func (d *Opus) Push(p *hub.Packet) (*media.Frame, bool) {
	d.follows(p)
	if len(p.Payload) == 0 {
		return nil, false
	}
	f := d.newFrame(p.Timestamp, true)
	f.Payload = p.Payload
	return f, true
}
