package whep

import (
	"math/rand/v2"
	"strings"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// outTrack is a webrtc.TrackLocal that forwards hub packets to one viewer.
// The payload bytes are the publisher's; only the header is this viewer's
// own: SSRC and payload type from negotiation, sequence numbers and
// timestamps shifted by per-viewer offsets so they start at random values
// and continue without a jump across skips (RFC 3550 §5.1).
type outTrack struct {
	kind     webrtc.RTPCodecType
	codec    media.Codec
	streamID string
	bound    atomic.Pointer[binding]

	// Owned by the forwarding goroutine.
	hdr      rtp.Header
	started  bool
	seqDelta uint16
	tsDelta  uint32
	lastSeq  uint16
}

type binding struct {
	ssrc uint32
	pt   uint8
	w    webrtc.TrackLocalWriter
}

func newOutTrack(c media.Codec, streamID string) *outTrack {
	k := webrtc.RTPCodecTypeVideo
	if c.Kind() == media.KindAudio {
		k = webrtc.RTPCodecTypeAudio
	}
	return &outTrack{kind: k, codec: c, streamID: streamID}
}

// Bind implements webrtc.TrackLocal: pion calls it once negotiation picked
// the payload type and SSRC.
func (t *outTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, t.codec.MimeType) {
			t.bound.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()})
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind implements webrtc.TrackLocal.
func (t *outTrack) Unbind(webrtc.TrackLocalContext) error {
	t.bound.Store(nil)
	return nil
}

// ID implements webrtc.TrackLocal.
func (t *outTrack) ID() string { return t.kind.String() }

// RID implements webrtc.TrackLocal.
func (t *outTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *outTrack) StreamID() string { return t.streamID }

// Kind implements webrtc.TrackLocal.
func (t *outTrack) Kind() webrtc.RTPCodecType { return t.kind }

// write sends one hub packet with this viewer's header. restart marks a
// discontinuity: the sequence continues from the last packet sent.
func (t *outTrack) write(p *hub.Packet, restart bool) error {
	b := t.bound.Load()
	if b == nil {
		return nil
	}
	switch {
	case !t.started:
		t.started = true
		t.seqDelta = uint16(rand.Uint32()) - p.SequenceNumber
		t.tsDelta = rand.Uint32()
	case restart:
		t.seqDelta = t.lastSeq + 1 - p.SequenceNumber
	}
	h := &t.hdr
	h.Version = 2
	h.PayloadType = b.pt
	h.SSRC = b.ssrc
	h.Marker = p.Marker
	h.SequenceNumber = p.SequenceNumber + t.seqDelta
	h.Timestamp = p.Timestamp + t.tsDelta
	t.lastSeq = h.SequenceNumber
	_, err := b.w.WriteRTP(h, p.Payload)
	return err
}
