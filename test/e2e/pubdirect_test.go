package e2e

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// publisherSession is the WHIP session GET /v1/sessions lists, waiting up
// to 5 s for it to have the RTP path want ("direct" once detached from
// pion, or "pion"); it returns what it saw last.
func publisherSession(t *testing.T, base, want string) apiSession {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var all struct{ Sessions []apiSession }
		if code := getJSON(t, base+"/v1/sessions", "", &all); code != 200 {
			t.Fatalf("GET /v1/sessions: %d", code)
		}
		var s apiSession
		for _, x := range all.Sessions {
			if x.Kind == "whip" {
				s = x
			}
		}
		if s.RTPPath == want || time.Now().After(deadline) {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitAbove polls n until it passes above, for up to d.
func waitAbove(n func() int, above int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for n() <= above {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// TestPublisherDetachesFromPion: a connected pion publisher (H264 with
// RTX, Opus, transport-wide sequence numbers) is detached from pion:
// sluice reads its SRTP, and the publisher gets from sluice what pion
// sent it: receiver reports, TWCC feedback, keyframe requests when a
// viewer asks. An ICE restart is answered by sluice and media goes on;
// the publisher's DELETE ends the session and its viewer.
func TestPublisherDetachesFromPion(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	base := startServer(t, func(c *config.Config) { c.Stream.ReconnectGrace, c.WebRTC.DetachPublishers = 0, true })
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	pub, _ := startFeed(t, ctx, base, "pubdirect", client.PublishOptions{RTX: true, TransportCC: true})
	if s := publisherSession(t, base, "direct"); s.RTPPath != "direct" || !s.Detached || s.State != "connected" {
		t.Fatalf("publisher session %+v, want connected, detached, on the direct path", s)
	}
	v, err := client.View(ctx, base+"/whep/pubdirect", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 2*clipGOP, 10*time.Second); got < 2*clipGOP {
		t.Fatalf("%d access units in 10 s through the detached publisher, want %d", got, 2*clipGOP)
	}

	// Feedback now comes from sluice, not pion's interceptors.
	twcc, rr := pub.TWCCFeedback(), pub.ReceiverReports()
	if !waitAbove(pub.TWCCFeedback, twcc+5, 3*time.Second) {
		t.Errorf("TWCC feedback: %d packets, then %d after 3 s: want more than 5 more", twcc, pub.TWCCFeedback())
	}
	if !waitAbove(pub.ReceiverReports, rr, 3*time.Second) {
		t.Errorf("no receiver report in 3 s after detaching (%d before)", rr)
	}
	before := pub.KeyframeRequests()
	for i := 0; pub.KeyframeRequests() == before; i++ {
		if i == 30 {
			t.Fatal("a viewer's PLIs did not reach the detached publisher in 3 s")
		}
		if err := v.SendPLI(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// ICE restart: answered by sluice (RFC 9725 §4.4.2); media goes on.
	if err := pub.RestartICE(ctx); err != nil {
		t.Fatalf("ICE restart of a detached publisher: %v", err)
	}
	drain(v)
	if got := receiveAUs(v, 2*clipGOP, 10*time.Second); got < 2*clipGOP {
		t.Fatalf("after the ICE restart: %d access units in 10 s, want %d", got, 2*clipGOP)
	}
	if s := publisherSession(t, base, "direct"); s.RTPPath != "direct" || s.State != "connected" {
		t.Errorf("publisher session after the ICE restart %+v", s)
	}

	// DELETE ends the session; with no grace the viewer ends too.
	if err := pub.Close(); err != nil {
		t.Errorf("publisher DELETE: %v", err)
	}
	waitDone(t, "viewer after the detached publisher's DELETE", v.Done(), 10*time.Second)
	if s := publisherSession(t, base, ""); s.ID != "" {
		t.Errorf("publisher session %+v still listed after DELETE", s)
	}
}

// TestDetachedPublisherHangsUp: a detached publisher that closes its
// PeerConnection without DELETE (a closed browser tab) ends its session
// at once: sluice reads its DTLS close_notify (the consent timeout,
// 15 s, would end it otherwise).
func TestDetachedPublisherHangsUp(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	base := startServer(t, func(c *config.Config) { c.Stream.ReconnectGrace, c.WebRTC.DetachPublishers = 0, true })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/hangup", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	go f.run(fctx)
	defer func() { stop(); <-f.done }()
	if s := publisherSession(t, base, "direct"); !s.Detached {
		t.Fatalf("publisher session %+v, want it detached", s)
	}
	stop()
	<-f.done
	if err := pub.Hangup(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for publisherSession(t, base, "").ID != "" {
		if time.Now().After(deadline) {
			t.Fatal("the detached publisher's session is still listed 3 s after it hung up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDetachPublishersOff: with webrtc.detach_publishers false the
// publisher stays on pion's path and its viewer plays.
func TestDetachPublishersOff(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	base := startServer(t, func(c *config.Config) { c.WebRTC.DetachPublishers = false })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "pubpion", client.PublishOptions{})
	v, err := client.View(ctx, base+"/whep/pubpion", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, clipGOP, 10*time.Second); got < clipGOP {
		t.Fatalf("%d access units in 10 s, want %d", got, clipGOP)
	}
	if s := publisherSession(t, base, "pion"); s.RTPPath != "pion" || s.Detached || s.State != "connected" {
		t.Errorf("publisher session %+v, want connected on pion's path", s)
	}
}

// cutConn passes a publisher's socket through until cut, and then drops
// everything it would send or receive: the publisher vanished (a crashed
// encoder, a lost network), with no DELETE and no DTLS close_notify.
type cutConn struct {
	net.PacketConn
	cut atomic.Bool
}

func (c *cutConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *cutConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

// TestPublisherVanishes: a publisher that goes silent (nothing sent, no
// DELETE, no close_notify) is ended by ICE consent (webrtc.consent_timeout,
// 3 s here), on the direct path (sluice's own consent check) as on pion's
// (its ICE timeouts): not before the timeout, within a few seconds after
// it; its stream waits out the reconnect grace and ends, its viewer with
// it, and nothing of the session is left.
func TestPublisherVanishes(t *testing.T) {
	for _, path := range []string{"direct", "pion"} {
		t.Run(path, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
			const consent, grace = 3 * time.Second, time.Second
			base := startServer(t, func(c *config.Config) {
				c.WebRTC.ConsentTimeout, c.Stream.ReconnectGrace = consent, grace
				c.WebRTC.DetachPublishers = path == "direct"
			})
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			conn := &cutConn{}
			wrap := func(pc net.PacketConn) net.PacketConn { conn.PacketConn = pc; return conn }
			startFeed(t, ctx, base, "vanish", client.PublishOptions{WrapConn: wrap})
			if s := publisherSession(t, base, path); s.RTPPath != path || s.State != "connected" {
				t.Fatalf("publisher session %+v, want connected on the %s path", s, path)
			}
			// The stream's own view names the path too.
			var st struct {
				Publisher struct {
					RTPPath string `json:"rtp_path"`
				} `json:"publisher"`
			}
			if code := getJSON(t, base+"/v1/streams/vanish", "", &st); code != 200 || st.Publisher.RTPPath != path {
				t.Errorf("GET /v1/streams/vanish: %d, publisher rtp_path %q, want %q", code, st.Publisher.RTPPath, path)
			}
			v, err := client.View(ctx, base+"/whep/vanish", client.ViewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			if got := receiveAUs(v, clipGOP, 10*time.Second); got < clipGOP {
				t.Fatalf("%d access units in 10 s, want %d", got, clipGOP)
			}

			conn.cut.Store(true)
			cut := time.Now()
			// Still there a second after going silent: a short silence is
			// no reason to end a session.
			time.Sleep(consent / 3)
			if s := publisherSession(t, base, path); s.ID == "" {
				t.Fatalf("publisher session ended %v after it went silent, before the consent timeout (%v)", time.Since(cut), consent)
			}
			deadline := cut.Add(consent + 5*time.Second)
			for publisherSession(t, base, "").ID != "" {
				if time.Now().After(deadline) {
					t.Fatalf("the silent publisher's session is still listed %v after it went silent", time.Since(cut))
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("%s path: session ended %v after the publisher went silent", path, time.Since(cut).Round(10*time.Millisecond))
			waitDone(t, "viewer after the stream's reconnect grace", v.Done(), grace+5*time.Second)
			if code := getJSON(t, base+"/v1/streams/vanish", "", &st); code != http.StatusNotFound {
				t.Errorf("GET /v1/streams/vanish after the grace: %d, want 404", code)
			}
		})
	}
}

// TestPublisherOverICETCPStaysOnPion: a publisher connected over ICE-TCP
// is not detached (the direct path reads UDP only): it stays on pion's
// path, the API says so, and its viewer plays.
func TestPublisherOverICETCPStaysOnPion(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	base := startServer(t, func(c *config.Config) { c.WebRTC.TCPEnabled, c.WebRTC.TCPPort = true, 0 })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "pubtcp", client.PublishOptions{ICETCP: true})
	v, err := client.View(ctx, base+"/whep/pubtcp", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// By the time the viewer has two GOPs the publisher would long have
	// been detached (100 ms after its tracks started).
	if got := receiveAUs(v, 2*clipGOP, 15*time.Second); got < 2*clipGOP {
		t.Fatalf("%d access units in 15 s from an ICE-TCP publisher, want %d", got, 2*clipGOP)
	}
	if s := publisherSession(t, base, "pion"); s.RTPPath != "pion" || s.Detached || s.State != "connected" {
		t.Errorf("ICE-TCP publisher session %+v, want connected on pion's path", s)
	}
}
