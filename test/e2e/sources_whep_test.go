package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// TestSourceWHEP: sluice B pulls whep://A/whep/cam from sluice A (both
// real servers); a pion viewer on B gets the video from a keyframe. A's
// publisher leaves (A ends the stream at once, reconnect_grace 0, which
// ends B's WHEP session): B's source is lost and retried with back-off
// (A answers 404 meanwhile); A's publisher comes back and B's source
// reconnects, and B's viewer, held by B's reconnect grace, goes on.
func TestSourceWHEP(t *testing.T) {
	a := startNode(t, func(c *config.Config) { c.Stream.ReconnectGrace = 0 }, nodeOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	clip := loadClip(t)
	publish := func() (stop func()) {
		pub, err := client.Publish(ctx, a.base+"/whip/cam", client.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fctx, fstop := context.WithCancel(ctx)
		done := looseFeed(fctx, pub, clip)
		return func() { fstop(); <-done; _ = pub.Close() }
	}
	stopPub := publish()

	b := startNode(t, func(c *config.Config) {
		c.Stream.ReconnectGrace = 20 * time.Second
		c.Sources = []config.Source{{Stream: "cam", URL: "whep://" + a.HTTPAddr().String() + "/whep/cam"}}
	}, nodeOptions{closeWithin: 5 * time.Second})
	waitSource(t, b.base, "cam", "connected", 10*time.Second, func(s sourceView) bool { return s.Source.State == "connected" })
	v, err := client.View(ctx, b.base+"/whep/cam", client.ViewOptions{NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	readSourceAUs(ctx, t, v, 10, true)
	s := getSource(t, b.base, "cam")
	if s.Source.Using != "WebRTC" || len(s.Tracks) == 0 {
		t.Errorf("source %+v tracks %+v, want connected over WebRTC with tracks", *s.Source, s.Tracks)
	}

	stopPub()
	lost := waitSource(t, b.base, "cam", "lost", 10*time.Second, func(s sourceView) bool { return s.Source.State == "error" })
	if lost.Source.LastError == "" {
		t.Errorf("lost without a reason: %+v", *lost.Source)
	}
	// A refuses (404) while nobody publishes: the retries back off.
	refused := waitSource(t, b.base, "cam", "backing off", 10*time.Second, func(s sourceView) bool { return s.Source.RetryIn >= 2 })
	t.Logf("while A has no publisher: %+v", *refused.Source)
	for len(v.AccessUnits()) > 0 {
		<-v.AccessUnits()
	}
	stopPub = publish()
	defer stopPub()
	again := waitSource(t, b.base, "cam", "connected again", 15*time.Second, func(s sourceView) bool { return s.Source.State == "connected" })
	if again.Source.Reconnects < 2 {
		t.Errorf("reconnects %d, want at least 2 (a refused retry, then the one that worked)", again.Source.Reconnects)
	}
	readSourceAUs(ctx, t, v, 10, true)
	select {
	case <-v.Done():
		t.Fatal("B's viewer session ended across the source's reconnect")
	default:
	}
}
