package hub

import (
	"context"
	"testing"
	"time"
)

// TestTapIsNotAViewer: a tap reads like a viewer but is not counted, and
// the viewer limit does not refuse it.
func TestTapIsNotAViewer(t *testing.T) {
	_, s, _ := newTestStream(t, 256) // at most 3 viewers
	var cs []*Cursor
	for range 3 {
		c, err := s.Join()
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	tap, err := s.Tap()
	if err != nil {
		t.Fatalf("tap at the viewer limit: %v", err)
	}
	if n := s.Viewers(); n != 3 {
		t.Fatalf("viewers with a tap: %d, want 3", n)
	}
	if _, err := s.Join(); err == nil {
		t.Fatal("a fourth viewer joined")
	}
	w := &writer{s: s}
	w.frame(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if p, _, err := tap.Next(ctx); err != nil || p.Track != 0 {
		t.Fatalf("tap Next: %v, %v", p, err)
	}
	tap.Close()
	tap.Close()
	for _, c := range cs {
		c.Close()
	}
	if n := s.Viewers(); n != 0 {
		t.Fatalf("viewers after closing: %d", n)
	}
	s.end(ErrEnded)
	if _, err := s.Tap(); err == nil || s.Viewers() != 0 {
		t.Fatalf("tap on an ended stream: %v, viewers %d", err, s.Viewers())
	}
}

// TestPublishedWakes: the channel from Published is closed by the next
// publication.
func TestPublishedWakes(t *testing.T) {
	h := New(Config{RingPackets: 256, PLIMinInterval: time.Second})
	ch := h.Published()
	select {
	case <-ch:
		t.Fatal("closed before any publication")
	default:
	}
	if _, err := h.Publish("a", &fakePub{}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal("not closed by a publication")
	}
}
