package hub

import (
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// maxSeqIndex bounds the per-track index from sequence numbers to ring
// positions: the NACK history. 4096 packets is several seconds of video
// at broadcast bit rates, far more than any retransmission is useful for.
const maxSeqIndex = 4096

// seqIndexSize is the index size for a ring: the ring size up to
// maxSeqIndex (both powers of two).
func seqIndexSize(ring int) int { return min(ring, maxSeqIndex) }

// Packet returns a copy of the packet of track that the publisher sent
// with sequence number seq, if the ring still holds it: one shared cache
// that answers every viewer's NACKs (RFC 4585 §6.2.1). The payload is
// copied into buf (grown as needed; the caller keeps it for the next
// call) under the writer's lock, which is what keeps the writer from
// reusing the packet's memory meanwhile (pool.go).
func (s *Stream) Packet(track int, seq uint16, buf []byte) (Packet, bool) {
	t := s.track(track)
	if t == nil {
		return Packet{}, false
	}
	pos := t.seqPos[int(seq)&(len(t.seqPos)-1)].Load()
	if pos == 0 {
		return Packet{}, false
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	p, _ := s.ring.get(pos - 1)
	if p == nil || p.Track != track || p.SequenceNumber != seq {
		return Packet{}, false
	}
	c := *p
	c.Payload = append(buf[:0], p.Payload...)
	return c, true
}

// setSenderReport records the newest RTCP sender report of a track: RTP
// timestamp rtp was sampled at NTP time ntp (RFC 3550 §6.4.1).
func (s *Stream) setSenderReport(track int, ntp uint64, rtp uint32) {
	if t := s.track(track); t != nil {
		// In the stream's numbering, which a taken-over stream shifts.
		t.sr.Store(&media.SenderReport{NTP: media.NTPTime(ntp), RTP: rtp + t.tsOff.Load()})
	}
}

// SenderReport returns the newest sender report of a track.
func (s *Stream) SenderReport(track int) (media.SenderReport, bool) {
	t := s.track(track)
	if t == nil {
		return media.SenderReport{}, false
	}
	sr := t.sr.Load()
	if sr == nil {
		return media.SenderReport{}, false
	}
	return *sr, true
}

// WallClock converts an RTP timestamp of a track to the publisher's wall
// clock using the track's newest sender report, so that the audio and
// video of one publisher can be lined up. ok is false before the first
// report.
func (s *Stream) WallClock(track int, rtp uint32) (time.Time, bool) {
	t := s.track(track)
	if t == nil {
		return time.Time{}, false
	}
	sr := t.sr.Load()
	if sr == nil {
		return time.Time{}, false
	}
	return sr.WallClock(rtp, t.Codec.ClockRate), true
}

// setVideoInfo records what a video track's parameter sets say.
func (s *Stream) setVideoInfo(track int, info media.VideoInfo) {
	if t := s.track(track); t != nil {
		t.info.Store(&info)
	}
}

// VideoInfo returns a video track's resolution, profile and level, once
// its parameter sets were seen.
func (s *Stream) VideoInfo(track int) (media.VideoInfo, bool) {
	t := s.track(track)
	if t == nil {
		return media.VideoInfo{}, false
	}
	info := t.info.Load()
	if info == nil {
		return media.VideoInfo{}, false
	}
	return *info, true
}

// track returns the state of track i, or nil. It takes no lock.
func (s *Stream) track(i int) *trackState {
	snap := s.snapshot.Load()
	if snap == nil || i < 0 || i >= len(*snap) {
		return nil
	}
	return (*snap)[i]
}
