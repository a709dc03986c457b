package frame

import (
	"errors"
	"strconv"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	mcvp9 "github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// VP9 rebuilds VP9 frames from the RFC 9628 payload format with
// gortsplib's decoder; the frame's Payload is the VP9 frame (or
// superframe) as encoded. A frame is a random access point when its
// uncompressed header (VP9 bitstream spec §6.2, read by mediacommon) says
// KEY_FRAME. A picture sent in several spatial layers (SVC) keeps only its
// first frame, the base layer, which decodes on its own. After a sequence
// gap the damaged frame is dropped and output resumes at the next key
// frame.
type VP9 struct {
	base

	dec     *rtpvp9.Decoder
	pkt     rtp.Packet
	waitKey bool

	picStarted bool
	picTS      uint32 // timestamp of the last picture a frame came out of

	info    media.VideoInfo
	hasInfo bool
}

// NewVP9 returns a VP9 depacketizer without wall clock, for track 0.
func NewVP9() *VP9 { return &VP9{base: base{clockRate: 90000}} }

// Push implements Depacketizer.
func (d *VP9) Push(p *hub.Packet) (*media.Frame, bool) {
	if !d.follows(p) || d.dec == nil {
		// A gap (or the first packet): fragments held are from a frame
		// that cannot be completed.
		d.dec = &rtpvp9.Decoder{}
		_ = d.dec.Init()
		d.waitKey = true
	}
	d.pkt.Header = rtp.Header{Version: 2, Marker: p.Marker, PayloadType: p.PayloadType, SequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp}
	d.pkt.Payload = p.Payload
	fr, err := d.dec.Decode(&d.pkt)
	if err != nil {
		if !errors.Is(err, rtpvp9.ErrMorePacketsNeeded) {
			d.waitKey = true
		}
		return nil, false
	}
	if d.picStarted && p.Timestamp == d.picTS {
		return nil, false // an upper spatial layer of a picture already out
	}
	d.picStarted, d.picTS = true, p.Timestamp
	var h mcvp9.Header
	if h.Unmarshal(fr) != nil {
		d.waitKey = true
		return nil, false
	}
	// show_existing_frame leaves NonKeyFrame false but is no key frame.
	key := !h.ShowExistingFrame && !h.NonKeyFrame
	if d.waitKey && !key {
		return nil, false
	}
	d.waitKey = false
	if key {
		d.info, d.hasInfo = vp9HeaderInfo(&h), true
	}
	f := d.newFrame(p.Timestamp, key)
	f.Payload = fr
	return f, true
}

// VideoInfo implements VideoInfoer.
func (d *VP9) VideoInfo() (media.VideoInfo, bool) { return d.info, d.hasInfo }

func vp9HeaderInfo(h *mcvp9.Header) media.VideoInfo {
	return media.VideoInfo{Width: h.Width(), Height: h.Height(), Profile: strconv.Itoa(int(h.Profile))}
}

// vp9KeyHeader returns the start of the key frame header in the first
// packet of a key frame (RFC 9628 §4.2: B set, P clear; pion parses the
// descriptor), enough for the frame size; nil for other packets. The
// descriptor's first byte is checked first, so that most packets cost
// one compare.
func vp9KeyHeader(p []byte) []byte {
	if len(p) == 0 || p[0]&0x08 == 0 || p[0]&0x40 != 0 {
		return nil
	}
	var pkt codecs.VP9Packet
	if _, err := pkt.Unmarshal(p); err != nil || len(pkt.Payload) == 0 {
		return nil
	}
	return pkt.Payload[:min(len(pkt.Payload), 16)]
}

// vp9Info reads a key frame's uncompressed header (VP9 bitstream spec
// §6.2, with mediacommon).
func vp9Info(b []byte) (media.VideoInfo, bool) {
	var h mcvp9.Header
	if h.Unmarshal(b) != nil || h.ShowExistingFrame || h.NonKeyFrame {
		return media.VideoInfo{}, false
	}
	return vp9HeaderInfo(&h), true
}
