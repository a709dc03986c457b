package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// TestConnectTimeout posts a WHIP offer from a PeerConnection that closes
// without ever connecting, and checks that the server frees the session
// after webrtc.connect_timeout and lets a new publisher take the stream.
func TestConnectTimeout(t *testing.T) {
	base := startServer(t, func(c *config.Config) { c.WebRTC.ConnectTimeout = time.Second })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	pc, gathered, err := newRawPeer(true)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("ICE gathering did not complete")
	}
	status, h, body := do(t, http.MethodPost, base+"/whip/ghost", "application/sdp", strings.NewReader(pc.LocalDescription().SDP))
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
	if status != http.StatusCreated {
		t.Fatalf("POST: %d %s", status, body)
	}
	loc := h.Get("Location")
	if !strings.HasPrefix(loc, "/whip/ghost/") {
		t.Fatalf("Location %q", loc)
	}

	// While the session waits to connect, it holds the stream.
	if status, _, body := do(t, http.MethodPost, base+"/whip/ghost", "application/sdp", strings.NewReader(rawOffer(t, true))); status != http.StatusConflict {
		t.Errorf("second publisher before the timeout: %d %q, want 409", status, body)
	}

	// The timeout is what is tested: wait it out, with margin.
	select {
	case <-time.After(2500 * time.Millisecond):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if status, _, body := do(t, http.MethodDelete, base+loc, "", nil); status != http.StatusNotFound {
		t.Errorf("DELETE %s 2.5 s after the offer: %d %q, want 404 (session freed)", loc, status, body)
	}

	pub, err := client.Publish(ctx, base+"/whip/ghost", client.PublishOptions{})
	if err != nil {
		t.Fatalf("new publisher on the freed stream: %v", err)
	}
	if err := pub.Close(); err != nil {
		t.Error(err)
	}
}
