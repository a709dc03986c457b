package hub

// Server-side consumers of a stream (LL-HLS, recording) read it with a
// cursor of their own like any viewer, but they are not viewers: they do
// not show in Viewers (the API, the metrics) and no viewer limit refuses
// them.

// Tap opens a cursor for a server-side consumer, positioned like Join's
// at the newest cached keyframe. It does not count as a viewer; Close is
// still the caller's to call (and releases nothing).
func (s *Stream) Tap() (*Cursor, error) {
	// Join counts a viewer and checks the limit; take that count back
	// around it. The limit check then sees the viewers as they are.
	s.viewers.Add(-1)
	c, err := s.Join()
	if err != nil {
		s.viewers.Add(1) // Join already took its own count back
		return nil, err
	}
	c.closed.Store(true) // nothing for Close to release
	return c, nil
}

// Published returns a channel that is closed the next time a stream is
// published (a new stream; not a publisher taking a detached stream over).
// Watchers take it, then list Streams, then wait on it, so that no stream
// published in between is missed.
func (h *Hub) Published() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.published
}
