package events

import (
	"testing"
	"time"
)

func TestOrderAndNeverBlock(t *testing.T) {
	b := NewBus()
	fast := b.Subscribe(16)
	slow := b.Subscribe(2) // never read while publishing
	kinds := []Kind{StreamPublished, ViewerJoined, ViewerLeft, SessionFailed, StreamUnpublished}
	done := make(chan struct{})
	go func() {
		for _, k := range kinds {
			b.Publish(Event{Kind: k, Stream: "s"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a full subscriber")
	}
	for i, k := range kinds {
		e := <-fast.C
		if e.Kind != k || e.Time.IsZero() {
			t.Fatalf("event %d = %+v, want kind %s with a time", i, e, k)
		}
	}
	if slow.Dropped() != 3 || fast.Dropped() != 0 {
		t.Fatalf("dropped slow=%d fast=%d, want 3 and 0", slow.Dropped(), fast.Dropped())
	}
	slow.Close()
	slow.Close()
	if _, ok := <-slow.C; !ok {
		t.Fatal("buffered events lost on close")
	}
	b.Publish(Event{Kind: ViewerJoined}) // no panic on a closed subscription
}
