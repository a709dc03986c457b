package whep

import (
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
)

// Retransmission to viewers (RFC 4585 §6.2.1 NACK, RFC 4588 RTX): a
// viewer's NACK names sequence numbers of its own numbering. Within one
// run of packets (between two discontinuities) the viewer's numbers are
// the publisher's shifted by seqDelta, so each maps back to a publisher
// sequence number, which the stream's ring still holds for a while
// (hub.Stream.Packet). The packet is sent again with this viewer's header;
// its payload is copied out of the ring into a buffer of the track's
// (the ring's memory is reused as it laps, hub/pool.go), with the
// two-byte RTX prefix where RTX is negotiated.

// packetSource is where retransmissions come from (hub.Stream).
type packetSource interface {
	Packet(track int, seq uint16, buf []byte) (hub.Packet, bool)
}

// maxResendCredit bounds a viewer's retransmissions: each packet sent earns
// one credit, each retransmission costs one, and at most this many are
// saved up. A viewer can make sluice send at most about twice the stream.
const maxResendCredit = 512

// sentState packs what the forwarding goroutine publishes for the RTCP
// goroutine in one atomic word: the current seqDelta, the viewer sequence
// number where the current run began, the last one sent and the hub track
// they come from (a simulcast layer changes it, with a new run).
func sentState(delta, first, last uint16, track int) uint64 {
	return 1<<48 | uint64(delta) | uint64(first)<<16 | uint64(last)<<32 | uint64(track&0x7fff)<<49
}

func unpackSent(v uint64) (delta, first, last uint16, track int, ok bool) {
	return uint16(v), uint16(v >> 16), uint16(v >> 32), int(v >> 49), v&(1<<48) != 0
}

// resend sends again the packet the viewer knows as seq, if the ring still
// holds it; it reports whether it did. Only the RTCP goroutine of the
// track's sender calls it.
func (t *outTrack) resend(src packetSource, seq uint16) bool {
	b := t.bound.Load()
	if b == nil {
		return false
	}
	delta, first, last, track, ok := unpackSent(t.sent.Load())
	if !ok || seq-first > last-first {
		return false // never sent, or sent before a discontinuity
	}
	if !t.creditStarted {
		// The first NACK: credit for what was sent so far (a random
		// initial sequence number is not credit).
		t.creditStarted, t.creditSeq = true, first-1
	}
	t.resendCredit = min(t.resendCredit+int(last-t.creditSeq), maxResendCredit)
	t.creditSeq = last
	if t.resendCredit <= 0 {
		return false
	}
	p, ok := src.Packet(track, seq-delta, t.resendBuf)
	if !ok {
		return false
	}
	t.resendBuf = p.Payload[:0]
	t.resendCredit--
	h := &t.rtxHdr
	*h = rtp.Header{
		Version:        2,
		PayloadType:    b.pt,
		SSRC:           b.ssrc,
		Marker:         p.Marker,
		SequenceNumber: seq,
		Timestamp:      p.Timestamp + t.tsDelta.Load(),
	}
	payload := p.Payload
	if b.rtxSSRC != 0 {
		// RFC 4588 §4: the RTX payload is the original sequence number
		// followed by the original payload, on the RTX stream's own
		// SSRC and sequence numbers.
		h.PayloadType, h.SSRC, h.SequenceNumber = b.rtxPT, b.rtxSSRC, t.rtxSeq
		t.rtxSeq++
		t.rtxBuf = append(append(t.rtxBuf[:0], byte(seq>>8), byte(seq)), p.Payload...)
		payload = t.rtxBuf
	}
	_, err := t.writer(b).WriteRTP(h, payload)
	return err == nil
}

// answerNACK resends what a viewer's NACK asks for and returns how many
// packets went out.
func (t *outTrack) answerNACK(src packetSource, n *rtcp.TransportLayerNack) int {
	b := t.bound.Load()
	if b == nil || n.MediaSSRC != b.ssrc {
		return 0
	}
	sent := 0
	for _, pair := range n.Nacks {
		pair.Range(func(seq uint16) bool {
			if t.resend(src, seq) {
				sent++
			}
			return true
		})
	}
	return sent
}
