package whep

import (
	"time"

	"github.com/pion/rtcp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// reportInterval is how often a viewer gets RTCP sender reports (RFC 3550
// §6.2 allows a fixed interval this short for so few senders).
const reportInterval = time.Second

// The egress worker, not a per-viewer interceptor goroutine, sends each
// viewer's RTCP sender reports: it already holds the viewer's packet counts
// and header offsets, and the publisher's reports say how its audio and
// video line up, which a report made up from send times would lose.

// reportState is what a track's sender reports need; owned by the
// forwarding goroutine.
type reportState struct {
	packets, octets uint32
	lastAt          time.Time // when the newest packet (outTrack.lastTS) went
}

// sent counts one forwarded packet.
func (r *reportState) sent(payload int, now time.Time) {
	r.packets++
	r.octets += uint32(payload)
	r.lastAt = now
}

// reportSource gives a track's newest publisher sender report; a
// *hub.Stream is one.
type reportSource interface {
	SenderReport(track int) (media.SenderReport, bool)
}

var _ reportSource = (*hub.Stream)(nil)

// senderReport is the track's RTCP sender report at now, or nil before its
// first packet. NTP time is this server's clock, so that the viewer's
// receiver reports give the round-trip time; the RTP timestamp comes from
// the publisher's newest report of the track when there is one (shifted
// into this viewer's numbering), so audio and video keep the publisher's
// alignment, else from the newest packet's timestamp and send time.
func (t *outTrack) senderReport(st reportSource, now time.Time) *rtcp.SenderReport {
	b := t.bound.Load()
	r := &t.report
	if b == nil || r.packets == 0 {
		return nil
	}
	ts := t.lastTS + ticks(now.Sub(r.lastAt), t.codec.ClockRate)
	track := t.index
	if _, _, _, cur, ok := unpackSent(t.sent.Load()); ok {
		track = cur // the simulcast layer being sent
	}
	if sr, ok := st.SenderReport(track); ok {
		ts = sr.RTP + t.tsDelta.Load() + ticks(now.Sub(sr.NTP), t.codec.ClockRate)
	}
	// The track's own report, filled again each second: the caller sends
	// it at once.
	t.sr = rtcp.SenderReport{
		SSRC:        b.ssrc,
		NTPTime:     media.ToNTP(now),
		RTPTime:     ts,
		PacketCount: r.packets,
		OctetCount:  r.octets,
	}
	return &t.sr
}

// sendReports sends the session's sender reports, one compound packet for
// all its tracks, when reportInterval has passed since the last ones.
func (s *Session) sendReports(now time.Time) {
	if now.Sub(s.reportedAt) < reportInterval {
		return
	}
	s.reportedAt = now
	pkts := s.reportBuf[:0]
	for i, t := range s.tracks {
		if t == nil || i != t.index {
			continue // simulcast layers share their leader's track
		}
		if sr := t.senderReport(s.stream, now); sr != nil {
			pkts = append(pkts, sr)
		}
	}
	s.reportBuf = pkts[:0]
	if len(pkts) == 0 {
		return
	}
	// Through the direct path whenever the RTP goes that way: one SRTCP
	// context then counts every report, before and after detaching.
	if s.onDirect.Load() && s.direct.Routed() {
		_ = s.direct.WriteRTCP(pkts)
	} else if pc := s.peer(); pc != nil {
		_ = pc.WriteRTCP(pkts)
	}
}

// ticks is d in RTP clock ticks, modulo 2^32. d may span years (a
// publisher whose NTP clock is not the wall clock) without overflow.
func ticks(d time.Duration, clockRate uint32) uint32 {
	rate := int64(clockRate)
	return uint32(int64(d/time.Second)*rate + int64(d%time.Second)*rate/int64(time.Second))
}
