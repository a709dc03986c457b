package whep

import (
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
			e.twccSeen = true
			lost, n := twccLoss(p)
			if e.twccSent == 0 {
				e.twccFrom = now
			}
			e.twccLost += lost
			e.twccSent += n
			if e.twccSent >= twccWindowPackets && now.Sub(e.twccFrom) >= twccWindow {
				e.sent(sentBytes, now)
				e.loss(float64(e.twccLost)/float64(e.twccSent), now)
				e.twccLost, e.twccSent = 0, 0
				changed = true
			}
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
