package cluster

import (
	"math/rand/v2"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/reorder"
	"github.com/sluice-media/sluice/internal/whip"
)

// NACK retry bounds between the nodes, as for publishers: a gap is NACKed
// when it appears and again every quarter of the reorder delay.
const (
	minNACKRetry = 10 * time.Millisecond
	maxNACKRetry = 100 * time.Millisecond
	maxNACKSeqs  = 256 // per NACK, so that it fits a packet
)

// read copies one owner track's RTP into the ring through a reorder
// window. The owner's session sends one continuous sequence; a gap (loss
// between the nodes) is NACKed, and the owner answers from its ring over
// RTX, which pion turns back into the original packets inside Read. A gap
// given up on in a video track asks for a keyframe (rate-limited by the
// stream). While the window holds packets the read has a deadline, so
// that gaps are NACKed again and given up on time when nothing comes.
func (l *link) read(st *hub.Stream, t *webrtc.TrackRemote, idx int, sniff *frame.InfoSniffer) {
	ssrc, sender := uint32(t.SSRC()), rand.Uint32()
	delay := l.c.cfg.Reorder.MaxDelay
	if delay <= 0 {
		delay = reorder.DefaultMaxDelay
	}
	retry := min(max(delay/4, minNACKRetry), maxNACKRetry)
	win := reorder.New(l.c.cfg.Reorder, func(p *hub.Packet, lost int) {
		if lost > 0 && sniff != nil {
			st.RequestKeyframe()
		}
		if p == nil {
			return // padding: nothing to forward
		}
		if sniff != nil {
			if info, ok := sniff.Sniff(p.Payload); ok {
				st.SetVideoInfo(idx, info)
			}
		}
		st.Write(p)
	})
	var missing []uint16
	var lastNACK time.Time
	nack := func(now time.Time, after time.Duration) {
		missing = win.Missing(missing[:0], maxNACKSeqs, now, after)
		if len(missing) > 0 {
			lastNACK = now
			_ = l.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
				SenderSSRC: sender, MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(missing),
			}})
		}
	}
	tick := func(now time.Time) {
		win.Expire(now)
		if win.Held() > 0 && !now.Before(lastNACK.Add(retry)) {
			nack(now, retry)
		}
	}
	// The window's next deadline, or the next NACK retry if sooner.
	wake := func() (time.Time, bool) {
		dl, ok := win.Deadline()
		if ok {
			if r := lastNACK.Add(retry); r.Before(dl) {
				dl = r
			}
		}
		return dl, ok
	}
	whip.ReadTrack(t, idx, wake, tick, func(seq uint16, p *hub.Packet, now time.Time) {
		if win.Push(seq, p, now) == reorder.Held {
			nack(now, 0) // the gaps this packet revealed
		}
		win.Expire(now)
	})
}
