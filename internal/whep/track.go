package whep

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/rtc"
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
	index    int // the hub track it forwards first (a simulcast layer: the group's leader)
	bound    atomic.Pointer[binding]
	direct   atomic.Pointer[rtc.Direct] // when set, RTP goes this way instead of the binding's writer

	// Owned by the forwarding goroutine.
	hdr      rtp.Header
	started  bool
	seqDelta uint16
	lastSeq  uint16
	lastTS   uint32
	runStart uint16 // viewer sequence number of the first packet after the last discontinuity
	report   reportState
	sr       rtcp.SenderReport // scratch of senderReport

	// Published by the forwarding goroutine for retransmissions (nack.go).
	tsDelta atomic.Uint32
	sent    atomic.Uint64 // sentState

	// Owned by the sender's RTCP goroutine (nack.go).
	resendCredit  int
	creditSeq     uint16
	creditStarted bool
	rtxSeq        uint16
	rtxBuf        []byte
	resendBuf     []byte // the packet resent, copied out of the ring
	rtxHdr        rtp.Header
}

type binding struct {
	ssrc uint32
	pt   uint8
	w    webrtc.TrackLocalWriter
	// RTX (RFC 4588), when the viewer negotiated it: retransmissions go
	// on this SSRC and payload type.
	rtxSSRC uint32
	rtxPT   uint8
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
			b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()}
			if rtx := uint32(ctx.SSRCRetransmission()); rtx != 0 {
				apt := "apt=" + strconv.Itoa(int(c.PayloadType))
				for _, r := range ctx.CodecParameters() {
					if strings.EqualFold(r.MimeType, webrtc.MimeTypeRTX) && strings.Contains(r.SDPFmtpLine, apt) {
						b.rtxSSRC, b.rtxPT = rtx, uint8(r.PayloadType)
					}
				}
			}
			t.bound.Store(b)
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind implements webrtc.TrackLocal.
func (t *outTrack) Unbind(webrtc.TrackLocalContext) error {
	if d := t.direct.Load(); d != nil && d.Detached() {
		return nil // pion closed, the direct path goes on with the binding
	}
	t.bound.Store(nil)
	return nil
}

// unbindPion drops the binding's pion writer once the session detached:
// the direct path writes everything from then on.
func (t *outTrack) unbindPion() {
	if b := t.bound.Load(); b != nil {
		nb := *b
		nb.w = nil
		t.bound.Store(&nb)
	}
}

// ID implements webrtc.TrackLocal.
func (t *outTrack) ID() string { return t.kind.String() }

// RID implements webrtc.TrackLocal.
func (t *outTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal.
func (t *outTrack) StreamID() string { return t.streamID }

// Kind implements webrtc.TrackLocal.
func (t *outTrack) Kind() webrtc.RTPCodecType { return t.kind }

// writer is where this track's RTP goes: the direct path once the
// connection uses it (retransmissions too, so that one SRTP context
// counts every packet of an SSRC), else pion's. After an ICE restart
// onto a pair the direct path cannot use (TCP), pion's path carries the
// packets again.
func (t *outTrack) writer(b *binding) webrtc.TrackLocalWriter {
	if d := t.direct.Load(); d != nil && (d.Routed() || b.w == nil) {
		return d
	}
	return b.w
}

// write sends one hub packet with this viewer's header. restart marks a
// discontinuity: the sequence continues from the last packet sent. now is
// about the time of sending, for sender reports. A packet for the direct
// path goes into batch when there is one, for its owner to flush.
func (t *outTrack) write(p *hub.Packet, restart bool, now time.Time, batch *rtc.Batch) error {
	b := t.bound.Load()
	if b == nil {
		return nil
	}
	switch {
	case !t.started:
		t.started = true
		t.seqDelta = uint16(rand.Uint32()) - p.SequenceNumber
		t.tsDelta.Store(rand.Uint32())
		t.runStart = p.SequenceNumber + t.seqDelta
	case restart:
		t.seqDelta = t.lastSeq + 1 - p.SequenceNumber
		t.runStart = t.lastSeq + 1
		// Simulcast layers share one timeline (hub/layer.go), but the
		// first frame of a new layer may carry the instant of the last
		// frame sent: keep timestamps going forward.
		if ts := p.Timestamp + t.tsDelta.Load(); int32(ts-t.lastTS) <= 0 {
			t.tsDelta.Add(t.lastTS - ts + 1)
		}
	}
	h := &t.hdr
	h.Version = 2
	h.PayloadType = b.pt
	h.SSRC = b.ssrc
	h.Marker = p.Marker
	h.SequenceNumber = p.SequenceNumber + t.seqDelta
	h.Timestamp = p.Timestamp + t.tsDelta.Load()
	t.lastSeq, t.lastTS = h.SequenceNumber, h.Timestamp
	t.sent.Store(sentState(t.seqDelta, t.runStart, t.lastSeq, p.Track))
	w := t.writer(b)
	var err error
	if d, ok := w.(*rtc.Direct); ok && batch != nil {
		_, err = d.QueueRTP(h, p.Payload, batch)
	} else {
		_, err = w.WriteRTP(h, p.Payload)
	}
	if err == nil {
		t.report.sent(len(p.Payload), now)
	}
	return err
}
