package ingest

import "sync"

// Set is a source's tracks by hub index, which answers the hub's keyframe
// requests (hub.Publisher and hub.TrackKeyframer) for any source: a
// session embeds it.
type Set struct {
	mu     sync.Mutex
	tracks []*Track
}

// Add makes t answer keyframe requests for its index.
func (s *Set) Add(t *Track) {
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	s.mu.Unlock()
}

// Tracks returns the tracks added so far.
func (s *Set) Tracks() []*Track {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Track(nil), s.tracks...)
}

// RequestKeyframe asks every video track for a keyframe (hub.Publisher).
func (s *Set) RequestKeyframe() { s.request(-1) }

// RequestTrackKeyframe asks the track with hub index track for a keyframe
// (hub.TrackKeyframer): a simulcast layer's request goes to its SSRC only.
func (s *Set) RequestTrackKeyframe(track int) { s.request(track) }

func (s *Set) request(track int) {
	for _, t := range s.Tracks() {
		if track < 0 || t.Index() == track {
			t.RequestKeyframe()
		}
	}
}

// Stats sums the counters of the tracks.
func (s *Set) Stats() Stats {
	var sum Stats
	for _, t := range s.Tracks() {
		st := t.Stats()
		sum.Late += st.Late
		sum.Duplicates += st.Duplicates
		sum.Unrecovered += st.Unrecovered
	}
	return sum
}
