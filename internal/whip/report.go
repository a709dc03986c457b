package whip

import (
	"time"

	"github.com/pion/rtcp"
)

// recvStats are the reception statistics of one SSRC a detached
// publisher sends (RFC 3550 §6.4.1, computed as in its appendix A.3 and
// A.8), from which its receiver reports are made.
type recvStats struct {
	clock    float64 // RTP clock rate
	started  bool
	baseSeq  uint32
	maxSeq   uint16
	cycles   uint32 // sequence number wraps, shifted: RFC 3550 A.1
	received uint32
	// What the previous report covered (the fraction lost is of the
	// interval since).
	expectedPrior, receivedPrior uint32
	transit                      float64 // of the previous packet, in RTP units
	jitter                       float64
	lastSR                       uint32    // middle 32 bits of the last SR's NTP time
	lastSRAt                     time.Time // when it arrived
}

// packet counts one packet of the SSRC that arrived at now; a repair
// (retransmission) counts but takes no part in the jitter, its send time
// being long past.
func (r *recvStats) packet(seq uint16, ts uint32, now time.Time, repair bool) {
	if !r.started {
		r.started = true
		r.baseSeq, r.maxSeq = uint32(seq), seq
	} else if d := seq - r.maxSeq; d != 0 && d < 1<<15 {
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
	r.received++
	if repair || r.clock == 0 {
		return
	}
	transit := float64(now.UnixNano())/1e9*r.clock - float64(ts)
	if r.transit != 0 {
		d := transit - r.transit
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.transit = transit
}

// senderReport notes an RTCP sender report of the SSRC (LSR, DLSR).
func (r *recvStats) senderReport(ntp uint64, now time.Time) {
	r.lastSR = uint32(ntp >> 16)
	r.lastSRAt = now
}

// report is the SSRC's reception report block at now; ok is false before
// its first packet.
func (r *recvStats) report(ssrc uint32, now time.Time) (b rtcp.ReceptionReport, ok bool) {
	if !r.started {
		return b, false
	}
	extMax := r.cycles + uint32(r.maxSeq)
	expected := extMax - r.baseSeq + 1
	lost := int64(expected) - int64(r.received) // negative with duplicates
	lost = min(max(lost, 0), 0x7fffff)
	expInterval := expected - r.expectedPrior
	recvInterval := r.received - r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	var fraction uint8
	if lostInterval := int64(expInterval) - int64(recvInterval); expInterval != 0 && lostInterval > 0 {
		fraction = uint8(lostInterval << 8 / int64(expInterval))
	}
	b = rtcp.ReceptionReport{
		SSRC: ssrc, FractionLost: fraction, TotalLost: uint32(lost),
		LastSequenceNumber: extMax, Jitter: uint32(r.jitter), LastSenderReport: r.lastSR,
	}
	if !r.lastSRAt.IsZero() {
		b.Delay = uint32(now.Sub(r.lastSRAt).Seconds() * 65536)
	}
	return b, true
}
