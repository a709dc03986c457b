package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/forward"
)

// mediamtxRTMPConfig rewrites ../shared/peers/mediamtx.yml for an RTMP
// server on rtmpPort that takes any path, and nothing else.
func mediamtxRTMPConfig(t *testing.T, rtmpPort int) string {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(peersDir(), "mediamtx.yml"))
	if err != nil {
		t.Skipf("no MediaMTX config template: %v", err)
	}
	set := map[string]string{"logLevel": "info", "rtmp": "yes", "webrtc": "no"}
	var out []string
	for _, line := range strings.Split(string(tmpl), "\n") {
		key, _, _ := strings.Cut(line, ":")
		if key == "paths" {
			break
		}
		if v, ok := set[key]; ok {
			line = key + ": " + v
			delete(set, key)
		}
		out = append(out, line)
	}
	if len(set) > 0 {
		t.Fatalf("mediamtx.yml has no %v to set", set)
	}
	out = append(out, fmt.Sprintf("rtmpAddress: 127.0.0.1:%d", rtmpPort), "paths:", "  all_others:")
	cfg := filepath.Join(t.TempDir(), "mediamtx.yml")
	if err := os.WriteFile(cfg, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// mtxProc is a running MediaMTX.
type mtxProc struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan error
}

func startMTX(t *testing.T, bin, cfg string) *mtxProc {
	t.Helper()
	p := &mtxProc{logs: &syncBuffer{}, exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, cfg)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	return p
}

// stop ends MediaMTX (SIGINT, then SIGKILL after 10 s).
func (p *mtxProc) stop(t *testing.T) {
	if p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		t.Error("MediaMTX did not stop within 10 s of SIGINT")
	}
	if t.Failed() {
		t.Logf("MediaMTX log:\n%s", p.logs.String())
	}
}

// probeUntil runs ffprobe on url until it sees streams, within d.
func probeUntil(t *testing.T, url string, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		out, err := exec.CommandContext(ctx, "ffprobe", "-hide_banner", "-loglevel", "error", "-rw_timeout", "5000000",
			"-analyzeduration", "1000000", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url).Output()
		cancel()
		if got := strings.Fields(string(out)); err == nil && len(got) > 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("ffprobe %s saw no stream within %v: %v", url, d, err)
		}
		time.Sleep(250 * time.Millisecond) // MediaMTX readies the path after its own 2 s track analysis
	}
}

// TestForwardToMediaMTX: a WebRTC publisher's stream is forwarded over
// RTMP to MediaMTX and read back with ffprobe; MediaMTX is restarted and
// the forward reconnects.
func TestForwardToMediaMTX(t *testing.T) {
	if testing.Short() {
		t.Skip("interop with MediaMTX: not in -short")
	}
	needTool(t, "ffprobe")
	bin := mediamtxBinary(t)
	port := freeLoopbackPort(t)
	cfg := mediamtxRTMPConfig(t, port)
	mtx := startMTX(t, bin, cfg)
	defer func() { mtx.stop(t) }()

	srv := startEdgeServer(t, func(c *config.Config) {
		c.Forward = []forward.Rule{{Streams: "restream", To: []string{fmt.Sprintf("rtmp://127.0.0.1:%d/live/fromsluice", port)}}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/restream", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := looseFeed(feedCtx, pub, loadClip(t))
	defer func() { stopFeed(); <-fed }()

	want := "h264"
	if wantAAC(t) {
		want = "h264 aac"
	}
	url := fmt.Sprintf("rtmp://127.0.0.1:%d/live/fromsluice", port)
	waitForwards(t, srv.base, "restream", 1, forward.StateRunning, 20*time.Second)
	if got := strings.Join(probeUntil(t, url, 20*time.Second), " "); got != want {
		t.Errorf("MediaMTX serves %q, want %q", got, want)
	}

	mtx.stop(t)
	waitForwards(t, srv.base, "restream", 1, forward.StateRetrying, 20*time.Second)
	mtx = startMTX(t, bin, cfg)
	fs := waitForwards(t, srv.base, "restream", 1, forward.StateRunning, 40*time.Second)
	if fs[0].Attempts < 2 {
		t.Errorf("forward %+v: want a second attempt", fs[0])
	}
	if got := strings.Join(probeUntil(t, url, 20*time.Second), " "); got != want {
		t.Errorf("after the restart MediaMTX serves %q, want %q", got, want)
	}
}
