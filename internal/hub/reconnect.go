package hub

import (
	"errors"
	"fmt"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// ErrCodecChanged ends a stream whose publisher came back, within the
// reconnect grace period, with codecs its viewers did not negotiate.
var ErrCodecChanged = errors.New("publisher came back with other codecs")

// A publisher that leaves does not end its stream at once: the stream is
// detached for Config.ReconnectGrace, its viewers keep their cursors (and
// their PeerConnections), and a new publisher of the same name with
// compatible codecs takes the stream over. The new publisher's sequence
// numbers and timestamps are rebased onto the old ones, so viewers see one
// continuous RTP stream; cursors restart each video track at the new
// publisher's first keyframe.

// detach is how a publisher leaves: the stream waits for a successor for
// the reconnect grace period, then ends. A pub that is no longer the
// stream's publisher (it was replaced) changes nothing.
func (s *Stream) detach(pub Publisher) {
	s.wmu.Lock()
	if s.pub != pub || s.detached {
		s.wmu.Unlock()
		return
	}
	grace := s.hub.cfg.ReconnectGrace
	if grace <= 0 || len(s.tracks) == 0 {
		s.wmu.Unlock()
		s.end(ErrEnded)
		return
	}
	s.detached, s.pub = true, nil
	s.graceTimer = time.AfterFunc(grace, s.endIfDetached)
	s.wmu.Unlock()
}

func (s *Stream) endIfDetached() {
	s.wmu.Lock()
	detached := s.detached
	s.wmu.Unlock()
	if detached {
		s.end(ErrEnded)
	}
}

// Detached reports whether the stream is waiting for its publisher to
// come back.
func (s *Stream) Detached() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.detached
}

// reattach gives a detached stream to a new publisher if every codec it
// sends matches a track of the stream; the caller holds the hub's lock.
func (s *Stream) reattach(pub Publisher, codecs []media.Codec) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.detached {
		return fmt.Errorf("%w: %q", ErrBusy, s.name)
	}
	claimed := make([]bool, len(s.tracks))
	for _, c := range codecs {
		i := s.matchTrack(c, claimed)
		if i < 0 {
			return fmt.Errorf("%w: %s was not published before", ErrCodecChanged, c)
		}
		claimed[i] = true
	}
	s.graceTimer.Stop()
	s.detached, s.pub = false, pub
	s.gen++
	s.claimed = make([]bool, len(s.tracks))
	for _, t := range s.tracks {
		t.rebase, t.started = true, false
	}
	return nil
}

// matchTrack finds an unclaimed track that codec c can continue; -1 if
// none. Called with wmu held.
func (s *Stream) matchTrack(c media.Codec, claimed []bool) int {
	for i, t := range s.tracks {
		if !claimed[i] && !t.Derived && media.Compatible(c, t.Codec) && media.Compatible(t.Codec, c) {
			return i
		}
	}
	return -1
}

// rebase maps a new publisher's packet onto the numbering of the track's
// previous publisher: sequence numbers continue at last+1, timestamps at
// last plus the wall-clock time between the two. Called with wmu held.
func (t *trackState) rebaseOnto(p *Packet, now time.Time) {
	if t.rebase {
		t.rebase = false
		elapsed := max(now.Sub(t.lastWall), 0)
		ticks := uint32(elapsed.Seconds() * float64(t.Codec.ClockRate))
		t.seqOff = t.lastSeq + 1 - p.SequenceNumber
		t.tsOff.Store(t.lastTS + max(ticks, 1) - p.Timestamp)
	}
	p.SequenceNumber += t.seqOff
	p.Timestamp += t.tsOff.Load()
	t.lastSeq, t.lastTS, t.lastWall = p.SequenceNumber, p.Timestamp, now
}
