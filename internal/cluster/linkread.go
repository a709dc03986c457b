package cluster

import (
	"errors"
	"math/rand/v2"
	"net"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/reorder"
)

// NACK retry bounds between the nodes, as for publishers: a gap is NACKed
// when it appears and again every quarter of the reorder delay.
const (
	minNACKRetry = 10 * time.Millisecond
	maxNACKRetry = 100 * time.Millisecond
	maxNACKSeqs  = 256 // per NACK, so that it fits a packet
)

// pastDeadline makes a Read return at once unless something is queued.
var pastDeadline = time.Unix(1, 0)

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

	buf := make([]byte, 1500)
	var h rtp.Header
	var armed time.Time
	polled := false
	for {
		wake, ok := win.Deadline()
		if ok {
			if r := lastNACK.Add(retry); r.Before(wake) {
				wake = r
			}
		}
		if polled {
			wake = pastDeadline
		}
		if !wake.Equal(armed) {
			_ = t.SetReadDeadline(wake)
			armed = wake
		}
		n, _, err := t.Read(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// One more Read with a deadline already past collects
				// queued RTX repairs before the window gives up.
				if polled = !polled; !polled {
					win.Expire(now)
					if win.Held() > 0 && !now.Before(lastNACK.Add(retry)) {
						nack(now, retry)
					}
				}
				continue
			}
			return
		}
		polled = false
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		end := n
		if h.Padding && n > hl {
			end -= int(buf[n-1])
		}
		var p *hub.Packet
		if end > hl {
			payload := make([]byte, end-hl)
			copy(payload, buf[hl:end])
			p = &hub.Packet{
				Track:          idx,
				Marker:         h.Marker,
				PayloadType:    h.PayloadType,
				SequenceNumber: h.SequenceNumber,
				Timestamp:      h.Timestamp,
				Payload:        payload,
			}
		}
		if win.Push(h.SequenceNumber, p, now) == reorder.Held {
			nack(now, 0) // the gaps this packet revealed
		}
		win.Expire(now)
	}
}
