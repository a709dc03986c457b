package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// viewSource opens a WHEP viewer of a source's H264 video.
func viewSource(ctx context.Context, t *testing.T, url string, cam *camera, onRTP func(webrtc.RTPCodecType, *rtp.Packet)) *client.Viewer {
	t.Helper()
	v, err := client.View(ctx, url, client.ViewOptions{NoAudio: true, OnRTP: onRTP,
		VideoCodecs: []webrtc.RTPCodecParameters{cam.codec()}})
	if err != nil {
		t.Fatalf("view %s: %v", url, err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}

// readSourceAUs reads n access units; the first must be a keyframe when key.
func readSourceAUs(ctx context.Context, t *testing.T, v *client.Viewer, n int, key bool) {
	t.Helper()
	for i := range n {
		select {
		case au := <-v.AccessUnits():
			if i == 0 && key && !client.IsIDR(au.NALUs) {
				t.Errorf("first access unit is not a keyframe")
			}
		case <-v.Done():
			t.Fatalf("viewer ended after %d access units", i)
		case <-ctx.Done():
			t.Fatalf("got %d access units of %d", i, n)
		}
	}
}

// TestSourceAlwaysOn: a camera pulled all the time (transport auto over
// UDP, and tcp) is a stream like any other: a pion WHEP viewer gets its
// video from a keyframe; the API shows the source connected on the
// transport in use, without credentials; the metrics count it.
func TestSourceAlwaysOn(t *testing.T) {
	for _, tc := range []struct{ transport, using string }{{"auto", "UDP"}, {"tcp", "TCP"}} {
		t.Run(tc.transport, func(t *testing.T) {
			cam := startCamera(t, cameraOptions{udp: true, user: "admin", pass: "12345abc"})
			n := startNode(t, func(c *config.Config) {
				c.Sources = []config.Source{{Stream: "cam", URL: cam.url("admin", "12345abc"), Transport: tc.transport}}
			}, nodeOptions{closeWithin: 5 * time.Second})
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			v := viewSource(ctx, t, n.base+"/whep/cam", cam, nil)
			readSourceAUs(ctx, t, v, 10, true)
			s := getSource(t, n.base, "cam")
			if s.Source.State != "connected" || s.Source.Using != tc.using || !s.Live {
				t.Errorf("source %+v live %v, want connected over %s", *s.Source, s.Live, tc.using)
			}
			if strings.Contains(s.raw, "12345abc") || strings.Contains(s.raw, "admin") {
				t.Errorf("the API shows the credentials: %s", s.raw)
			}
			if len(s.Tracks) != 1 || s.Tracks[0].Codec != "H264" {
				t.Errorf("tracks %+v, want H264", s.Tracks)
			}
			if l := metricLine(t, n.base, "sluice_source_connected"); l != "sluice_source_connected 1" {
				t.Errorf("metric %q, want sluice_source_connected 1", l)
			}
		})
	}
}

// TestSourceCameraRestart: the camera goes down under a WHEP viewer; the
// source is lost, retried after 1 s and 2 s (the back-off shows in its
// state); the camera comes back within stream.reconnect_grace and the
// same viewer goes on from the new keyframe with no gap in its sequence
// numbers.
func TestSourceCameraRestart(t *testing.T) {
	cam := startCamera(t, cameraOptions{})
	n := startNode(t, func(c *config.Config) {
		c.Stream.ReconnectGrace = 15 * time.Second
		c.Sources = []config.Source{{Stream: "cam", URL: cam.url("", ""), Transport: "tcp"}}
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	watch := newSeqWatch()
	v := viewSource(ctx, t, n.base+"/whep/cam", cam, watch.onRTP)
	readSourceAUs(ctx, t, v, 10, true)

	cam.stop()
	lost := waitSource(t, n.base, "cam", "lost", 5*time.Second, func(s sourceView) bool { return s.Source.State == "error" })
	if lost.Source.RetryIn != 1 || lost.Source.LastError == "" {
		t.Errorf("lost: %+v, want retry in 1 s and the reason", *lost.Source)
	}
	// The first retry finds the camera still down: the next waits 2 s.
	waitSource(t, n.base, "cam", "backing off", 5*time.Second, func(s sourceView) bool { return s.Source.RetryIn == 2 })
	for len(v.AccessUnits()) > 0 {
		<-v.AccessUnits() // what came before the camera went down
	}
	before, _ := watch.snapshot()
	cam.start()
	s := waitSource(t, n.base, "cam", "connected again", 10*time.Second, func(s sourceView) bool { return s.Source.State == "connected" })
	if s.Source.Reconnects < 2 {
		t.Errorf("reconnects %d, want at least 2", s.Source.Reconnects)
	}
	readSourceAUs(ctx, t, v, 10, true)
	select {
	case <-v.Done():
		t.Fatal("the viewer's session ended across the camera's restart")
	default:
	}
	after, maxJump := watch.snapshot()
	if after[webrtc.RTPCodecTypeVideo] <= before[webrtc.RTPCodecTypeVideo] {
		t.Error("no packets after the restart")
	}
	if maxJump[webrtc.RTPCodecTypeVideo] != 1 {
		t.Errorf("the viewer's sequence numbers jumped by %d", maxJump[webrtc.RTPCodecTypeVideo])
	}
}

// rtspRead plays rtsp://addr/stream with gortsplib's client until it has
// n RTP packets.
func rtspRead(ctx context.Context, t *testing.T, addr, stream string, n int) {
	t.Helper()
	u, err := base.ParseURL("rtsp://" + addr + "/" + stream)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE: %v", err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, n)
	c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case <-got:
		case <-ctx.Done():
			t.Fatalf("RTSP reader got %d packets of %d", i, n)
		}
	}
}

// TestSourceOnDemand: an on-demand source is not pulled before its first
// reader; a WHEP POST starts the pull and gets video; the pull stops
// on_demand_close_after once the viewer left; an RTSP DESCRIBE starts it
// again.
func TestSourceOnDemand(t *testing.T) {
	cam := startCamera(t, cameraOptions{})
	n := startNode(t, func(c *config.Config) {
		c.Sources = []config.Source{{Stream: "cam", URL: cam.url("", ""), Transport: "tcp", OnDemand: true,
			OnDemandCloseAfter: time.Second}}
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	time.Sleep(300 * time.Millisecond) // nothing may happen without a reader
	s := getSource(t, n.base, "cam")
	if d := cam.describes.Load(); d != 0 || s.Source.State != "idle" || s.Live {
		t.Fatalf("before any reader: camera asked %d times, source %+v live %v", d, *s.Source, s.Live)
	}

	v := viewSource(ctx, t, n.base+"/whep/cam", cam, nil)
	readSourceAUs(ctx, t, v, 5, true)
	if cam.playing.Load() != 1 {
		t.Errorf("camera plays %d sessions, want 1", cam.playing.Load())
	}
	_ = v.Close()
	left := time.Now()
	waitSource(t, n.base, "cam", "idle", 5*time.Second, func(s sourceView) bool { return s.Source.State == "idle" && !s.Live })
	if d := time.Since(left); d < 750*time.Millisecond {
		t.Errorf("pull stopped %v after the last viewer left, before on_demand_close_after (1 s)", d)
	}
	waitCount(t, "camera sessions", 3*time.Second, func() int { return int(cam.playing.Load()) }, 0)
	if _, err := n.Hub().Lookup("cam"); err == nil {
		t.Error("the stream is still published after the pull stopped")
	}

	describes := cam.describes.Load()
	rtspRead(ctx, t, n.RTSPAddr().String(), "cam", 50)
	if cam.describes.Load() == describes {
		t.Error("the RTSP DESCRIBE did not start the pull")
	}
	waitSource(t, n.base, "cam", "idle again", 5*time.Second, func(s sourceView) bool { return s.Source.State == "idle" })
}

// waitCount polls a counter until it reads want.
func waitCount(t *testing.T, what string, d time.Duration, read func() int, want int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for read() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d after %v, want %d", what, read(), d, want)
		}
		time.Sleep(20 * time.Millisecond) // polling a counter
	}
}

// TestSourceRefused: wrong credentials and a port nobody listens on put
// their sources in state error with the reason, retried with back-off
// (no busy loop); a good source of the same server plays meanwhile, and
// the API lists all three without their passwords.
func TestSourceRefused(t *testing.T) {
	cam := startCamera(t, cameraOptions{user: "admin", pass: "right-pass"})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := closed.Addr().String()
	closed.Close()
	n := startNode(t, func(c *config.Config) {
		c.Sources = []config.Source{
			{Stream: "badauth", URL: cam.url("admin", "wrong-pass"), Transport: "tcp"},
			{Stream: "dead", URL: fmt.Sprintf("rtsp://admin:dead-pass@%s/x", dead), Transport: "tcp"},
			{Stream: "good", URL: cam.url("admin", "right-pass"), Transport: "tcp"},
		}
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	start := time.Now()
	bad := waitSource(t, n.base, "badauth", "backing off", 6*time.Second, func(s sourceView) bool { return s.Source.RetryIn == 2 })
	if bad.Source.State != "error" || !strings.Contains(bad.Source.LastError, "401") {
		t.Errorf("wrong credentials: %+v, want state error with the 401", *bad.Source)
	}
	d := waitSource(t, n.base, "dead", "backing off", 6*time.Second, func(s sourceView) bool { return s.Source.RetryIn == 2 })
	if d.Source.State != "error" || !strings.Contains(d.Source.LastError, "refused") || d.Source.Reconnects != 1 {
		t.Errorf("refused: %+v, want state error, connection refused, 1 reconnect", *d.Source)
	}
	// Two attempts in the first seconds, each a DESCRIBE and its answer
	// to the challenge, and the good source's one: no busy loop.
	if got, elapsed := cam.describes.Load(), time.Since(start); got > 8 {
		t.Errorf("camera asked %d times in %v", got, elapsed)
	}

	v := viewSource(ctx, t, n.base+"/whep/good", cam, nil)
	readSourceAUs(ctx, t, v, 5, true)

	_, _, list := do(t, "GET", n.base+"/v1/streams", "", nil)
	for _, name := range []string{`"badauth"`, `"dead"`, `"good"`} {
		if !strings.Contains(list, name) {
			t.Errorf("GET /v1/streams does not list %s: %s", name, list)
		}
	}
	for _, secret := range []string{"wrong-pass", "dead-pass", "right-pass"} {
		if strings.Contains(list, secret) {
			t.Errorf("GET /v1/streams shows %q", secret)
		}
	}
	if l := metricLine(t, n.base, "sluice_source_reconnects_total"); l == "" || l == "sluice_source_reconnects_total 0" {
		t.Errorf("metric %q, want reconnects counted", l)
	}
}
