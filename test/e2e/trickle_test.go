package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
)

// TestTrickle publishes with an offer sent before ICE gathering, so that it
// holds no candidate, and the candidates trickled by PATCH (RFC 9725
// §4.4.1): each PATCH, and the final a=end-of-candidates, gets 204, the
// publisher connects and a viewer that trickles too receives its media.
func TestTrickle(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	clip := loadClip(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// Publish fails unless every PATCH is answered 204.
	pub, err := client.Publish(ctx, srv.base+"/whip/trickle", client.PublishOptions{Trickle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if strings.Contains(pub.Offer(), "a=candidate:") || strings.Contains(pub.Offer(), "a=end-of-candidates") {
		t.Errorf("the trickle offer holds candidates:\n%s", pub.Offer())
	}
	if n := pub.TrickledCandidates(); n < 1 {
		t.Errorf("publisher trickled %d candidates, want at least 1", n)
	}

	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := looseFeed(feedCtx, pub, clip)
	defer func() { stopFeed(); <-fed }()

	v, err := client.View(ctx, srv.base+"/whep/trickle", client.ViewOptions{Trickle: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if strings.Contains(v.Offer(), "a=candidate:") {
		t.Errorf("the viewer's trickle offer holds candidates")
	}
	if n := v.TrickledCandidates(); n < 1 {
		t.Errorf("viewer trickled %d candidates, want at least 1", n)
	}
	if got := receiveAUs(v, clipGOP, 10*time.Second); got < clipGOP {
		t.Fatalf("viewer received %d access units in 10 s, want %d", got, clipGOP)
	}
	select {
	case <-v.OpusPackets():
	case <-time.After(5 * time.Second):
		t.Error("no Opus packet")
	}
}

// TestICERestart restarts ICE by PATCH (RFC 9725 §4.4.2) on a live
// publisher, and then on a viewer: each gets 200 with an answer fragment and
// a new ETag, the sessions stay up and access units keep reaching the viewer.
func TestICERestart(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	clip := loadClip(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	pub, err := client.Publish(ctx, srv.base+"/whip/restart", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := looseFeed(feedCtx, pub, clip)
	defer func() { stopFeed(); <-fed }()

	v, err := client.View(ctx, srv.base+"/whep/restart", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 10, 10*time.Second); got < 10 {
		t.Fatalf("before the restart: %d access units in 10 s", got)
	}

	restart := func(who string, etag func() string, do func(context.Context) error, done <-chan struct{}) {
		t.Helper()
		before := etag()
		if err := do(ctx); err != nil {
			t.Fatalf("%s ICE restart: %v", who, err)
		}
		if after := etag(); after == "" || after == before {
			t.Errorf("%s: ETag %q after the restart, was %q: want a new one", who, after, before)
		}
		drain(v)
		// More than two GOPs after the restart: media flows on the new
		// ICE session, not just what was queued.
		if got := receiveAUs(v, 2*clipGOP+5, 15*time.Second); got < 2*clipGOP+5 {
			t.Fatalf("after the %s restart: %d access units in 15 s, want %d", who, got, 2*clipGOP+5)
		}
		select {
		case <-done:
			t.Fatalf("%s ended after its ICE restart", who)
		default:
		}
	}
	restart("publisher", pub.ETag, pub.RestartICE, pub.Done())
	restart("viewer", v.ETag, v.RestartICE, v.Done())
	if paths := waitRTPPaths(t, srv.base, "", map[string]int{"direct": 1}); paths["direct"] != 1 {
		t.Errorf("after the viewer's ICE restart: viewer RTP paths %v, want 1 direct", paths)
	}
	// And the publisher again, with the ETag of the first restart.
	restart("publisher (second time)", pub.ETag, pub.RestartICE, pub.Done())

	if n := srv.Sessions(); n != 2 {
		t.Errorf("server holds %d sessions, want 2", n)
	}
	if err := v.Close(); err != nil {
		t.Errorf("viewer DELETE: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Errorf("publisher DELETE: %v", err)
	}
}
