package frame

import (
	"errors"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	mcav1 "github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// AV1 rebuilds AV1 temporal units from the AV1 RTP payload format with
// gortsplib's decoder; the frame's NALUs are the unit's OBUs as sent
// (obu_size present or not). A unit is a random access point when it
// holds a sequence header, which encoders send with every key frame.
// After a sequence gap the damaged unit is dropped and output resumes at
// the next such unit.
type AV1 struct {
	base

	dec     *rtpav1.Decoder
	pkt     rtp.Packet
	waitKey bool
}

// NewAV1 returns an AV1 depacketizer without wall clock, for track 0.
func NewAV1() *AV1 { return &AV1{base: base{clockRate: 90000}} }

// Push implements Depacketizer.
func (d *AV1) Push(p *hub.Packet) (*media.Frame, bool) {
	if !d.follows(p) || d.dec == nil {
		// A gap (or the first packet): fragments held are from a unit
		// that cannot be completed.
		d.dec = &rtpav1.Decoder{}
		_ = d.dec.Init()
		d.waitKey = true
	}
	d.pkt.Header = rtp.Header{Version: 2, Marker: p.Marker, PayloadType: p.PayloadType, SequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp}
	d.pkt.Payload = p.Payload
	tu, err := d.dec.Decode(&d.pkt)
	if err != nil {
		if !errors.Is(err, rtpav1.ErrMorePacketsNeeded) {
			d.waitKey = true
		}
		return nil, false
	}
	key := mcav1.IsRandomAccess2(tu)
	if d.waitKey && !key {
		return nil, false
	}
	d.waitKey = false
	f := d.newFrame(p.Timestamp, key)
	f.NALUs = tu
	return f, true
}
