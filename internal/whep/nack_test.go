package whep

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// recWriter records what a track writes.
type recWriter struct{ pkts []rtp.Packet }

// WriteRTP keeps the payload slice as given, so that a test can tell a
// shared payload from a copy; scratch buffers reused by the caller show.
func (w *recWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.pkts = append(w.pkts, rtp.Packet{Header: *h, Payload: payload})
	return len(payload), nil
}

func (w *recWriter) Write(b []byte) (int, error) { return len(b), nil }

var _ webrtc.TrackLocalWriter = (*recWriter)(nil)

// ring is a packet source holding packets by publisher sequence number.
type ring map[uint16]*hub.Packet

func (r ring) Packet(track int, seq uint16, buf []byte) (hub.Packet, bool) {
	p, ok := r[seq]
	if !ok || track != 0 {
		return hub.Packet{}, false
	}
	c := *p
	c.Payload = append(buf[:0], p.Payload...) // as hub.Stream.Packet copies
	return c, true
}

func newBoundTrack(rtx bool) (*outTrack, *recWriter) {
	w := &recWriter{}
	t := newOutTrack(media.Codec{MimeType: "video/H264", ClockRate: 90000}, "s")
	b := &binding{ssrc: 1111, pt: 102, w: w}
	if rtx {
		b.rtxSSRC, b.rtxPT = 2222, 103
	}
	t.bound.Store(b)
	return t, w
}

func nackFor(seqs ...uint16) *rtcp.TransportLayerNack {
	return &rtcp.TransportLayerNack{MediaSSRC: 1111, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
}

func TestResendFromRing(t *testing.T) {
	ot, w := newBoundTrack(false)
	src := ring{}
	send := func(seq uint16, restart bool) {
		p := &hub.Packet{SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Payload: []byte{byte(seq), 0xaa}}
		src[seq] = p
		if err := ot.write(p, restart, time.Now(), nil); err != nil {
			t.Fatal(err)
		}
	}
	for seq := uint16(100); seq < 110; seq++ {
		send(seq, seq == 100)
	}
	// A skip: the viewer's numbers continue, the publisher's jump.
	for seq := uint16(200); seq < 205; seq++ {
		send(seq, seq == 200)
	}
	sent := w.pkts
	w.pkts = nil
	byOrig := map[uint16]rtp.Packet{}
	for i, p := range sent {
		orig := uint16(100 + i)
		if i >= 10 {
			orig = uint16(200 + i - 10)
		}
		byOrig[orig] = p
	}

	// 202 is in the current run: sent again exactly as the first time,
	// with the ring's payload (copied into the track's resend buffer).
	want := byOrig[202]
	if n := ot.answerNACK(src, nackFor(want.SequenceNumber)); n != 1 || len(w.pkts) != 1 {
		t.Fatalf("resent %d packets", n)
	}
	got := w.pkts[0]
	if got.SequenceNumber != want.SequenceNumber || got.Timestamp != want.Timestamp || got.SSRC != 1111 || got.PayloadType != 102 {
		t.Errorf("resent header %+v, want %+v", got.Header, want.Header)
	}
	if !bytes.Equal(got.Payload, src[202].Payload) {
		t.Errorf("resent payload %x, want %x", got.Payload, src[202].Payload)
	}
	// 105 was sent before the skip; its viewer number now maps elsewhere.
	// A number never sent, and one for another SSRC, get nothing.
	w.pkts = nil
	n := ot.answerNACK(src, nackFor(byOrig[105].SequenceNumber, byOrig[204].SequenceNumber+1))
	n += ot.answerNACK(src, &rtcp.TransportLayerNack{MediaSSRC: 9, Nacks: rtcp.NackPairsFromSequenceNumbers([]uint16{want.SequenceNumber})})
	if n != 0 || len(w.pkts) != 0 {
		t.Fatalf("resent %d packets outside the current run", n)
	}
}

func TestResendRTX(t *testing.T) {
	ot, w := newBoundTrack(true)
	src := ring{}
	for seq := uint16(65534); seq != 3; seq++ {
		p := &hub.Packet{SequenceNumber: seq, Timestamp: 9000, Payload: []byte{0x41, byte(seq)}}
		src[seq] = p
		_ = ot.write(p, false, time.Now(), nil)
	}
	first := w.pkts[0].SequenceNumber
	w.pkts = nil
	for _, seq := range []uint16{first + 1, first + 3} {
		if n := ot.answerNACK(src, nackFor(seq)); n != 1 {
			t.Fatalf("resent %d, want 1", n)
		}
		p := &w.pkts[len(w.pkts)-1]
		p.Payload = slices.Clone(p.Payload) // the RTX scratch buffer is reused
	}
	for i, p := range w.pkts {
		osn := first + 1 + uint16(2*i)
		if p.SSRC != 2222 || p.PayloadType != 103 || p.SequenceNumber != uint16(i) {
			t.Errorf("RTX packet %d header %+v", i, p.Header)
		}
		if len(p.Payload) != 4 || uint16(p.Payload[0])<<8|uint16(p.Payload[1]) != osn || p.Payload[3] != src[osn-first+65534].Payload[1] {
			t.Errorf("RTX packet %d payload %x, want OSN %d", i, p.Payload, osn)
		}
	}
}

// sendRun writes publisher packets from..to-1 to ot, keeping them in src.
func sendRun(ot *outTrack, src ring, from, to int) {
	for i := from; i < to; i++ {
		seq := uint16(i)
		p := &hub.Packet{SequenceNumber: seq, Payload: []byte{1}}
		src[seq] = p
		_ = ot.write(p, false, time.Now(), nil)
	}
}

// viewerSeqs is n viewer sequence numbers from first on.
func viewerSeqs(first uint16, n int) []uint16 {
	var all []uint16
	for i := range n {
		all = append(all, first+uint16(i))
	}
	return all
}

func TestResendCredit(t *testing.T) {
	ot, w := newBoundTrack(false)
	src := ring{}
	sendRun(ot, src, 0, 2000)
	all := viewerSeqs(w.pkts[0].SequenceNumber, 2000)
	if n := ot.answerNACK(src, nackFor(all...)); n != maxResendCredit {
		t.Fatalf("resent %d of 2000 asked, want the credit %d", n, maxResendCredit)
	}
	// Ten more packets sent earn ten more retransmissions.
	sendRun(ot, src, 2000, 2010)
	if n := ot.answerNACK(src, nackFor(all...)); n != 10 {
		t.Fatalf("resent %d after ten packets, want 10", n)
	}
}

// TestResendCreditStartsWithWhatWasSent: the first NACK finds credit for
// the packets sent so far, not for the random initial sequence number:
// ten packets sent, asked for three times over, go out ten times in all.
func TestResendCreditStartsWithWhatWasSent(t *testing.T) {
	ot, w := newBoundTrack(false)
	src := ring{}
	sendRun(ot, src, 0, 10)
	all := viewerSeqs(w.pkts[0].SequenceNumber, 10)
	total := 0
	for range 3 {
		total += ot.answerNACK(src, nackFor(all...))
	}
	if total != 10 {
		t.Fatalf("resent %d for 10 packets sent, want 10", total)
	}
}

// TestResendAllocatesNothing: answering a NACK from the ring, plain or
// RTX, allocates nothing once the track's scratch has grown.
func TestResendAllocatesNothing(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		ot, w := newBoundTrack(rtx)
		src := ring{}
		for seq := uint16(10); seq < 20; seq++ {
			p := &hub.Packet{SequenceNumber: seq, Payload: []byte{1, 2, 3}}
			src[seq] = p
			if err := ot.write(p, seq == 10, time.Now(), nil); err != nil {
				t.Fatal(err)
			}
		}
		nack := nackFor(w.pkts[5].SequenceNumber)
		w.pkts = make([]rtp.Packet, 0, 1000)
		ot.resendCredit = 1 << 20
		if n := testing.AllocsPerRun(100, func() {
			if ot.answerNACK(src, nack) != 1 {
				t.Fatal("not resent")
			}
		}); n != 0 {
			t.Errorf("rtx %v: %v allocations per resend, want 0", rtx, n)
		}
	}
}
