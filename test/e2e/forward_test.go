package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/forward"
	"github.com/sluice-media/sluice/internal/server"
)

// targetServer is a sluice that a test stops and starts again on the same
// RTMP and SRT ports, as a forward target.
type targetServer struct {
	t          *testing.T
	rtmp, srt  string
	mu         sync.Mutex
	srv        *server.Server
	logStopped func()
}

func newTargetServer(t *testing.T) *targetServer {
	ts := &targetServer{t: t, rtmp: fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t)), srt: fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t))}
	ts.start()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *targetServer) start() {
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTMP.Listen, cfg.SRT.Listen = ts.rtmp, ts.srt
	cfg.RTSP = config.RTSP{Listen: "127.0.0.1:0"}
	cfg.WebRTC.UDPPort = 0
	cfg.WebRTC.ListenIPs = []string{"127.0.0.1"}
	w := &testLogWriter{t: ts.t}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo})))
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.mu.Lock()
	ts.srv, ts.logStopped = srv, w.stop
	ts.mu.Unlock()
}

func (ts *targetServer) stop() {
	ts.mu.Lock()
	srv := ts.srv
	ts.srv = nil
	ts.mu.Unlock()
	if srv != nil {
		if err := srv.Close(); err != nil {
			ts.t.Errorf("target Close: %v", err)
		}
		ts.logStopped()
	}
}

// waitStreams waits until the target has the streams.
func (ts *targetServer) waitStreams(names ...string) {
	ts.mu.Lock()
	srv := ts.srv
	ts.mu.Unlock()
	for _, n := range names {
		waitStream(ts.t, srv.Hub(), n, 10*time.Second)
	}
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// forwardsOf reads the stream's forward targets from the JSON API.
func forwardsOf(t *testing.T, base, stream string) []forward.Target {
	t.Helper()
	resp, err := http.Get(base + "/v1/streams/" + stream)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil
	}
	var info struct {
		Forwards []forward.Target `json:"forwards"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("stream info %s: %v", body, err)
	}
	return info.Forwards
}

// waitForwards polls the API until every target of the stream is in
// state want.
func waitForwards(t *testing.T, base, stream string, n int, want forward.State, d time.Duration) []forward.Target {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		fs := forwardsOf(t, base, stream)
		ok := len(fs) == n
		for _, f := range fs {
			ok = ok && f.State == want
		}
		if ok {
			return fs
		}
		if time.Now().After(deadline) {
			t.Fatalf("forwards of %s after %v: %+v, want %d %s", stream, d, fs, n, want)
		}
		time.Sleep(100 * time.Millisecond) // polling the API
	}
}

func TestForwardRTMPAndSRT(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	target := newTargetServer(t)
	src := startEdgeServer(t, func(c *config.Config) {
		c.Forward = []forward.Rule{
			{Streams: "fw-*", To: []string{"rtmp://" + target.rtmp + "/live/copy-rtmp?token=x"}},
			{Streams: "fw-a", To: []string{"srt://" + target.srt + "?streamid=publish:copy-srt"}},
			{Streams: "other", To: []string{"rtmp://" + target.rtmp + "/never"}},
		}
	})
	ffmpegPublish(t, 60, "flv", "rtmp://"+src.RTMPAddr().String()+"/live/fw-a")
	fs := waitForwards(t, src.base, "fw-a", 2, forward.StateRunning, 15*time.Second)
	for _, f := range fs {
		if strings.Contains(f.URL, "token") || strings.Contains(f.URL, "publish:") {
			t.Errorf("target URL %q shows its key", f.URL)
		}
	}
	target.waitStreams("copy-rtmp", "copy-srt")
	for _, c := range []struct{ url, name string }{
		{"rtmp://" + target.rtmp + "/copy-rtmp", "rtmp"},
		{"srt://" + target.srt + "?streamid=read:copy-srt", "srt"},
	} {
		if got := probeStreams(t, c.url); strings.Join(got, ",") != "h264,aac" {
			t.Errorf("%s copy: ffprobe sees %v, want h264 and aac", c.name, got)
		}
	}

	// The target restarts: both forwards fail, retry and run again.
	target.stop()
	waitForwards(t, src.base, "fw-a", 2, forward.StateRetrying, 15*time.Second)
	target.start()
	fs = waitForwards(t, src.base, "fw-a", 2, forward.StateRunning, 20*time.Second)
	target.waitStreams("copy-rtmp", "copy-srt")
	for _, f := range fs {
		if f.Attempts < 2 || f.Error == "" {
			t.Errorf("target %s: %d attempts, last error %q; want a retry after an error", f.URL, f.Attempts, f.Error)
		}
	}
	if got := probeStreams(t, "rtmp://"+target.rtmp+"/copy-rtmp"); strings.Join(got, ",") != "h264,aac" {
		t.Errorf("rtmp copy after the restart: ffprobe sees %v, want h264 and aac", got)
	}
	_, _, body := do(t, "GET", src.base+"/metrics", "", nil)
	for _, m := range []string{`sluice_forward_targets{state="running"} 2`, "sluice_forward_failures_total"} {
		if !strings.Contains(body, m) {
			t.Errorf("metrics lack %q", m)
		}
	}
}
