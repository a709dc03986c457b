package hub

import "testing"

func TestIngestedCountsWrites(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(true)                            // SPS, PPS, IDR, audio
	w.frame(false)                           // slice, audio
	s.write(&Packet{Track: 7, Payload: idr}) // no such track: not taken
	packets, bytes := s.Ingested()
	want := len(sps) + len(pps) + len(idr) + len(slice) + 2*len(audio)
	if packets != 6 || bytes != uint64(want) {
		t.Fatalf("Ingested = %d packets, %d bytes; want 6, %d", packets, bytes, want)
	}
}

// TestFrameOpen: a video packet without the marker leaves its frame
// open; the marker, or an audio packet, closes it.
func TestFrameOpen(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	steps := []struct {
		p    Packet
		open bool
	}{
		{Packet{Track: 0, Payload: idr}, true},
		{Packet{Track: 0, Payload: idr, Marker: true}, false},
		{Packet{Track: 0, Payload: slice}, true},
		{Packet{Track: 1, Payload: audio}, false},
	}
	for i, st := range steps {
		s.write(&st.p)
		if got := s.FrameOpen(); got != st.open {
			t.Fatalf("after packet %d: FrameOpen %v, want %v", i, got, st.open)
		}
	}
}
