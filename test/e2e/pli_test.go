package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
)

// TestViewerPLIForwarded checks that a viewer's PLI reaches the publisher
// (RFC 4585 §6.3.1) and that a burst of them is rate-limited to one per
// stream.pli_min_interval (1 s by default).
func TestViewerPLIForwarded(t *testing.T) {
	const interval = time.Second // config default stream.pli_min_interval
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/pli", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	feedCtx, stopFeed := context.WithCancel(ctx)
	go f.run(feedCtx)
	defer func() { stopFeed(); <-f.done }()
	<-f.sentAU(1)

	v, err := client.View(ctx, base+"/whep/pli", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	select {
	case <-v.AccessUnits():
	case <-ctx.Done():
		t.Fatal("no access unit")
	}

	// Let any keyframe request the join caused age out of the rate
	// limiter's window; the wait is the behaviour under test, not a
	// stand-in for an event.
	time.Sleep(interval + 200*time.Millisecond)
	before := pub.KeyframeRequests()
	if err := v.SendPLI(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(2 * time.Second)
	for pub.KeyframeRequests() == before {
		select {
		case <-pub.KeyframeRequested():
		case <-deadline:
			t.Fatal("the viewer's PLI did not reach the publisher within 2 s")
		}
	}

	time.Sleep(interval + 200*time.Millisecond)
	before = pub.KeyframeRequests()
	start := time.Now()
	for range 10 {
		if err := v.SendPLI(); err != nil {
			t.Fatal(err)
		}
	}
	// Count what arrives within one second of the burst.
	time.Sleep(time.Second - time.Since(start))
	got := pub.KeyframeRequests() - before
	t.Logf("10 PLIs from the viewer gave %d keyframe requests at the publisher within 1 s", got)
	if got < 1 || got > 2 {
		t.Errorf("10 PLIs in a burst gave %d keyframe requests within 1 s, want 1 or 2", got)
	}
}
