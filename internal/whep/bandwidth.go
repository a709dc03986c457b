package whep

import (
	"encoding/binary"
	"time"

	"github.com/pion/rtcp"
)

// A light bandwidth estimator per viewer, without goroutines or timers:
// the loss-based controller of Google Congestion Control (draft-ietf-
// rmcat-gcc-02 §6), fed by what the viewer reports anyway. Transport-wide
// congestion feedback (TWCC) says which packets arrived, every ~100 ms;
// without it, RTCP receiver reports give the fraction lost, about every
// second. REMB, when a viewer sends it, caps the estimate. pion's GCC
// interceptor (a delay-based estimator and a pacer, with a goroutine and a
// timer each per viewer) would cost far more than the whole forwarding
// path of a viewer.
//
// The rules, each time a loss figure comes:
//   - more than 10% lost: the estimate falls to what was sent (or below,
//     if it already is) times (1 - loss/2);
//   - under 2% lost: it grows by half per second, and to at least what
//     was sent, at most to a cap above the highest layer;
//   - in between: it stays, but not below what arrived.
const (
	startEstimate = 500_000 // bits per second before any feedback
	minEstimate   = 30_000
	lossHigh      = 0.10
	lossLow       = 0.02
	growthPerSec  = 0.5
	// twccWindow: TWCC loss is judged over at least this many packets
	// and this long, so that one lost packet is not 20% loss.
	twccWindowPackets = 20
	twccWindow        = 200 * time.Millisecond
	rembStale         = 3 * time.Second
)

// estimator is one viewer's bandwidth estimate. Its owner serialises the
// calls.
type estimator struct {
	est      float64 // bits per second
	cap      float64 // upper bound; 0: none
	lastLoss time.Time

	// Send rate between loss reports, from the session's byte counter.
	sentBytes uint64
	sentAt    time.Time
	sendRate  float64
	based     bool // the estimate has taken the first send rate into account

	twccSeen           bool
	twccLost, twccSent int
	twccFrom           time.Time

	remb   float64
	rembAt time.Time
}

func newEstimator() *estimator { return &estimator{est: startEstimate} }

// estimate is the current estimate in bits per second.
func (e *estimator) estimate(now time.Time) float64 {
	if e.remb > 0 && now.Sub(e.rembAt) < rembStale {
		return min(e.est, e.remb)
	}
	return e.est
}

// sent records the session's payload byte counter at now, for the send
// rate the loss rule falls back to.
func (e *estimator) sent(bytes uint64, now time.Time) {
	if !e.sentAt.IsZero() {
		if d := now.Sub(e.sentAt).Seconds(); d > 0 {
			e.sendRate = float64(bytes-e.sentBytes) * 8 / d
		}
	}
	e.sentBytes, e.sentAt = bytes, now
}

// loss applies one loss figure (0..1) observed at now. The first figure
// only starts the send rate; the estimate then starts at what is sent, or
// at startEstimate if that is more.
func (e *estimator) loss(fraction float64, now time.Time) {
	if e.sendRate == 0 && !e.based {
		return
	}
	if !e.based {
		e.based = true
		e.est = max(e.est, e.sendRate)
	}
	switch {
	case fraction > lossHigh:
		// Repeated loss compounds: the estimate falls below what is
		// sent by a further loss/2 each time.
		e.est = min(e.est, e.sendRate) * (1 - fraction/2)
	case fraction < lossLow && !e.lastLoss.IsZero():
		// The link carries at least what it carried without loss.
		dt := min(now.Sub(e.lastLoss).Seconds(), 1)
		e.est = max(e.est*(1+growthPerSec*max(dt, 0)), e.sendRate)
	default:
		// Some loss: hold, but not below what arrived.
		e.est = max(e.est, e.sendRate*(1-fraction))
	}
	if e.cap > 0 {
		e.est = min(e.est, e.cap)
	}
	e.est = max(e.est, minEstimate)
	e.lastLoss = now
}

// rtcp takes the feedback among a viewer's RTCP packets; it reports
// whether the estimate may have changed. videoSSRC is the viewer's video
// SSRC (receiver reports of audio are left to TWCC).
func (e *estimator) rtcp(pkts []rtcp.Packet, videoSSRC uint32, sentBytes uint64, now time.Time) bool {
	changed := false
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerCC:
			lost, n := twccLoss(p)
			changed = e.twcc(lost, n, sentBytes, now) || changed
		case *rtcp.ReceiverReport:
			if e.twccSeen {
				continue
			}
			for _, r := range p.Reports {
				if r.SSRC == videoSSRC {
					e.sent(sentBytes, now)
					e.loss(float64(r.FractionLost)/256, now)
					changed = true
				}
			}
		case *rtcp.ReceiverEstimatedMaximumBitrate:
			e.remb, e.rembAt = float64(p.Bitrate), now
			changed = true
		}
	}
	return changed
}

// twcc takes what one TWCC feedback reported: lost of total packets not
// received. It reports whether the estimate may have changed.
func (e *estimator) twcc(lost, total int, sentBytes uint64, now time.Time) bool {
	e.twccSeen = true
	if e.twccSent == 0 {
		e.twccFrom = now
	}
	e.twccLost += lost
	e.twccSent += total
	if e.twccSent < twccWindowPackets || now.Sub(e.twccFrom) < twccWindow {
		return false
	}
	e.sent(sentBytes, now)
	e.loss(float64(e.twccLost)/float64(e.twccSent), now)
	e.twccLost, e.twccSent = 0, 0
	return true
}

// twccCount is what the TWCC feedback in one compound RTCP packet
// reported.
type twccCount struct{ lost, total int }

// splitTWCC reads the transport-wide congestion control feedback
// (RTPFB, FMT 15) of a compound RTCP packet in place and appends the
// other packets to rest. Parsing TWCC into pion's rtcp.TransportLayerCC
// allocates per reported packet; counting the statuses allocates nothing.
// A packet it cannot read goes to rest, for rtcp.Unmarshal to judge.
func splitTWCC(b, rest []byte) ([]byte, twccCount) {
	var c twccCount
	for len(b) >= 4 {
		n := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if n > len(b) {
			return append(rest, b...), c
		}
		if b[1] == rtcpfbPT && b[0]&0x1f == twccFMT {
			if lost, total, ok := twccStatuses(b[:n]); ok {
				c.lost += lost
				c.total += total
				b = b[n:]
				continue
			}
		}
		rest = append(rest, b[:n]...)
		b = b[n:]
	}
	return rest, c
}

// RTCP transport-layer feedback (RFC 4585 §6.1) with FMT 15:
// draft-holmer-rmcat-transport-wide-cc-extensions-01 §3.1.
const (
	rtcpfbPT = 205
	twccFMT  = 15
)

// twccStatuses counts a TWCC feedback packet's packet statuses: after the
// 4-byte RTCP header and the two SSRCs come the base sequence number, the
// status count, the reference time and the feedback count, then 2-byte
// chunks: a run (bit 15 clear: symbol in bits 13-14, length in 0-12) or a
// vector (bit 15 set: bit 14 chooses 14 one-bit or 7 two-bit symbols).
// Symbol 0 is "not received".
func twccStatuses(b []byte) (lost, total int, ok bool) {
	if len(b) < 20 {
		return 0, 0, false
	}
	total = int(binary.BigEndian.Uint16(b[14:16]))
	seen := 0
	for i := 20; seen < total; i += 2 {
		if i+2 > len(b) {
			return 0, 0, false
		}
		chunk := binary.BigEndian.Uint16(b[i:])
		if chunk&0x8000 == 0 {
			n := min(int(chunk&0x1fff), total-seen)
			if chunk>>13&3 == 0 {
				lost += n
			}
			seen += n
			continue
		}
		size, count := 1, 14
		if chunk&0x4000 != 0 {
			size, count = 2, 7
		}
		for k := range min(count, total-seen) {
			shift := (count - 1 - k) * size
			if (chunk>>shift)&(1<<size-1) == 0 {
				lost++
			}
			seen++
		}
	}
	return lost, total, true
}

// twccLoss counts the packets a TWCC feedback reports as not received, and
// all it reports on.
func twccLoss(p *rtcp.TransportLayerCC) (lost, total int) {
	total = int(p.PacketStatusCount)
	seen := 0
	for _, c := range p.PacketChunks {
		switch c := c.(type) {
		case *rtcp.RunLengthChunk:
			n := min(int(c.RunLength), total-seen)
			if c.PacketStatusSymbol == rtcp.TypeTCCPacketNotReceived {
				lost += n
			}
			seen += n
		case *rtcp.StatusVectorChunk:
			for _, s := range c.SymbolList {
				if seen >= total {
					break
				}
				if s == rtcp.TypeTCCPacketNotReceived {
					lost++
				}
				seen++
			}
		}
	}
	return lost, total
}
