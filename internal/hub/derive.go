package hub

import "github.com/sluice-media/sluice/internal/media"

// A derived track is one that no publisher sends: the same media as one of
// the stream's tracks, its source, in another codec (Opus transcoded from
// an AAC or G.711 track, for WebRTC viewers). It is a track of the stream
// like the others, with its own index, ring packets and sender reports, so
// every viewer reads the one copy like a published track. The stream
// declares it when its source is added, before the stream is ready, so
// viewers negotiating later see it; what writes it (a Deriver, see
// internal/tap) runs only while a consumer demands it.

// Deriver makes a stream's derived tracks. The hub asks it, as each track
// is added, which codecs that track can also be served in, and passes on
// the consumers' demand for them.
type Deriver interface {
	// Derive returns the codecs a track of codec c is also offered in;
	// none, with the reason, where it could be but cannot be here (the
	// libraries missing). It is called with the stream's lock held and
	// must not call back into the stream.
	Derive(c media.Codec) ([]media.Codec, error)
	// Added says that derived track d of w's stream was added (a deriver
	// that keeps its tracks running starts here). Called without the
	// lock. The deriver writes the track through w.
	Added(w *Writer, d Track)
	// Demand says that a consumer reads derived track d of w's stream
	// from now until release is called: the deriver writes it through w
	// meanwhile.
	Demand(w *Writer, d Track) (release func())
}

// addDerivedLocked adds the tracks derived from source, if a Deriver is
// configured; it returns them for Added. Called with wmu held.
func (s *Stream) addDerivedLocked(src *trackState) []Track {
	d := s.hub.cfg.Deriver
	if d == nil || src.group != nil {
		return nil
	}
	codecs, err := d.Derive(src.Codec)
	if err != nil {
		src.DeriveErr = err.Error()
		return nil
	}
	var out []Track
	for _, c := range codecs {
		t := s.newTrackLocked(c)
		t.Derived, t.Source = true, src.Index
		s.appendTrackLocked(t)
		out = append(out, t.Track)
	}
	return out
}

// derivedAdded tells the Deriver of tracks added; called without wmu.
func (s *Stream) derivedAdded(ts []Track) {
	for _, t := range ts {
		s.hub.cfg.Deriver.Added(&Writer{s: s}, t)
	}
}

// Demand marks track i as read by one more consumer until release is
// called. For a derived track, that starts what writes it (when no other
// consumer did); for a published track it does nothing.
func (s *Stream) Demand(i int) (release func()) {
	t := s.track(i)
	if t == nil || !t.Derived || s.hub.cfg.Deriver == nil {
		return func() {}
	}
	return s.hub.cfg.Deriver.Demand(&Writer{s: s}, t.Track)
}

// Derived returns the tracks derived from track i.
func (s *Stream) Derived(i int) []Track {
	var out []Track
	for _, t := range s.Tracks() {
		if t.Derived && t.Source == i {
			out = append(out, t)
		}
	}
	return out
}

// RewindTrack moves the cursor back so that it reads again the newest
// packets of track that the ring still holds, as far as they span ticks
// of the track's clock (by their timestamps) and at most maxSlots
// packets of any track back; it never moves the cursor forward. A
// transcoder of a stream whose ring holds no keyframe to start from (an
// audio-only stream) uses it to start from the audio just before its
// demand, so that its encoder's first frame is whole at once. Only the
// cursor's reader may call it, before it reads.
func (c *Cursor) RewindTrack(track int, ticks uint32, maxSlots int) {
	r := c.s.ring
	pos := r.head.Load()
	oldest := r.oldest()
	if pos-oldest > uint64(maxSlots) {
		oldest = pos - uint64(maxSlots)
	}
	// Held before the slots are read, as TryNext does (pool.go): the
	// writer reuses no packet from oldest on meanwhile; an emptied slot
	// (a chunk reused before the hold) ends the search.
	c.held = min(c.held, oldest)
	c.hold.Store(c.held)
	var newest uint32
	seen := false
	for pos > oldest {
		p, lagged := r.get(pos - 1)
		if lagged || p == nil {
			break
		}
		pos--
		if p.Track != track {
			continue
		}
		if !seen {
			newest, seen = p.Timestamp, true
		} else if newest-p.Timestamp >= ticks {
			break
		}
	}
	c.pos = min(c.pos, pos)
}
