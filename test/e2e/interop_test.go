package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
)

// peersDir is ../shared/peers relative to the repository root; SLUICE_TEST_PEERS
// overrides it (as it does for scripts/build-mediamtx.sh).
func peersDir() string {
	if d := os.Getenv("SLUICE_TEST_PEERS"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "..", "shared", "peers")
}

// mediamtxBinary returns the MediaMTX binary: $SLUICE_TEST_MEDIAMTX, or the one
// scripts/build-mediamtx.sh cached. With SLUICE_TEST_BUILD_MEDIAMTX=1 it builds
// it when missing (a minute or more, and the Go module proxy); otherwise a
// missing binary skips the test with the reason.
func mediamtxBinary(t *testing.T) string {
	t.Helper()
	if b := os.Getenv("SLUICE_TEST_MEDIAMTX"); b != "" {
		return b
	}
	script := filepath.Join("..", "..", "scripts", "build-mediamtx.sh")
	args := []string{"--path"}
	if os.Getenv("SLUICE_TEST_BUILD_MEDIAMTX") == "1" {
		args = nil
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if args != nil {
			t.Skipf("MediaMTX is not built: run scripts/build-mediamtx.sh (needs the Go module proxy), or set SLUICE_TEST_BUILD_MEDIAMTX=1 or SLUICE_TEST_MEDIAMTX=/path/to/mediamtx %s", lastLines(stderr.String(), 2))
		}
		t.Skipf("MediaMTX cannot be built (%v): %s", err, lastLines(stderr.String(), 5))
	}
	return strings.TrimSpace(string(out))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// localPort returns a port that was free a moment ago on 127.0.0.1.
func localPort(t *testing.T, network string) int {
	t.Helper()
	switch network {
	case "udp":
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	default:
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
}

// mediamtxConfig rewrites ../shared/peers/mediamtx.yml for this run: the
// API on, every address on a free port, and one path pulling the source.
func mediamtxConfig(t *testing.T, apiPort, httpPort, udpPort int, source string) string {
	t.Helper()
	tmpl, err := os.ReadFile(filepath.Join(peersDir(), "mediamtx.yml"))
	if err != nil {
		t.Skipf("no MediaMTX config template: %v", err)
	}
	set := map[string]string{
		"logLevel":              "info",
		"api":                   "yes",
		"webrtcAddress":         fmt.Sprintf("127.0.0.1:%d", httpPort),
		"webrtcLocalUDPAddress": fmt.Sprintf("127.0.0.1:%d", udpPort),
	}
	var out []string
	for _, line := range strings.Split(string(tmpl), "\n") {
		key, _, _ := strings.Cut(line, ":")
		if key == "paths" {
			break // replaced below
		}
		if v, ok := set[key]; ok {
			line = key + ": " + v
			delete(set, key)
		}
		out = append(out, line)
		if key == "api" {
			out = append(out, fmt.Sprintf("apiAddress: 127.0.0.1:%d", apiPort))
		}
	}
	if len(set) > 0 {
		t.Fatalf("mediamtx.yml has no %v to set", set)
	}
	out = append(out, "paths:", "  sluice:", "    source: "+source)
	cfg := filepath.Join(t.TempDir(), "mediamtx.yml")
	if err := os.WriteFile(cfg, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// syncBuffer is a bytes.Buffer for a child process's output.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// mtxPath is the part of MediaMTX's /v3/paths/get answer the test reads.
type mtxPath struct {
	Ready   bool     `json:"ready"`
	Tracks  []string `json:"tracks"`
	Tracks2 []struct {
		Codec string `json:"codec"`
	} `json:"tracks2"`
	Source *struct {
		Type string `json:"type"`
	} `json:"source"`
	InboundBytes uint64 `json:"inboundBytes"`
}

// TestMediaMTXPullsFromSluice has MediaMTX pull a stream from sluice over
// WHEP (a path with source: whep://…): MediaMTX asks OPTIONS, sees PATCH
// allowed, and so sends its offer and trickles its candidates by PATCH.
// The path must become ready with an H264 and an Opus track and receive
// media; when MediaMTX stops, its DELETE ends the session in sluice.
func TestMediaMTXPullsFromSluice(t *testing.T) {
	if testing.Short() {
		t.Skip("interop with MediaMTX: not in -short")
	}
	bin := mediamtxBinary(t)
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })

	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/interop", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	feedCtx, stopFeed := context.WithCancel(ctx)
	fed := looseFeed(feedCtx, pub, loadClip(t))
	defer func() { stopFeed(); <-fed }()

	// MediaMTX talks to sluice through a proxy that records the exchange.
	rec := &exchangeLog{}
	target, err := url.Parse(srv.base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = &http.Transport{DisableKeepAlives: true}
	proxy.ModifyResponse = func(r *http.Response) error {
		rec.add(r.Request.Method + " " + strconv.Itoa(r.StatusCode))
		return nil
	}
	front := httptest.NewServer(proxy)
	defer front.Close()

	apiPort := localPort(t, "tcp")
	source := "whep://" + strings.TrimPrefix(front.URL, "http://") + "/whep/interop"
	cfg := mediamtxConfig(t, apiPort, localPort(t, "tcp"), localPort(t, "udp"), source)

	var logs syncBuffer
	cmd := exec.Command(bin, cfg)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("MediaMTX did not stop within 10 s of SIGINT")
		}
	}
	defer func() {
		stop()
		if t.Failed() {
			t.Logf("MediaMTX log:\n%s", logs.String())
		}
	}()

	// Poll MediaMTX's API until the path is ready with both tracks and
	// bytes are coming in (there is no event to wait on across processes).
	api := fmt.Sprintf("http://127.0.0.1:%d/v3/paths/get/sluice", apiPort)
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	var last mtxPath
	var lastErr error
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("MediaMTX exited: %v", err)
		default:
		}
		last, lastErr = getPath(ctx, hc, api)
		if lastErr == nil && last.Ready && hasCodecs(last, "H264", "Opus") && last.InboundBytes > 10_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX path not ready with H264+Opus within 30 s: %+v (err %v)", last, lastErr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("MediaMTX path: ready, tracks %v, source %+v, %d bytes in", last.Tracks, last.Source, last.InboundBytes)
	if last.Source == nil || last.Source.Type != "webRTCSource" {
		t.Errorf("MediaMTX path source %+v, want webRTCSource", last.Source)
	}
	if n := srv.Sessions(); n != 2 {
		t.Errorf("sluice holds %d sessions, want 2 (publisher and MediaMTX)", n)
	}

	// MediaMTX's source DELETEs its WHEP session when it stops.
	stop()
	srv.waitSessions(t, 1, 10*time.Second)

	// It asked OPTIONS, found PATCH allowed, so posted its offer and
	// trickled its candidates (RFC 9725 §4.4.1), then DELETEd.
	got := rec.list()
	t.Logf("MediaMTX → sluice: %v", got)
	for _, want := range []string{"OPTIONS 204", "POST 201", "PATCH 204", "DELETE 200"} {
		if !slices.Contains(got, want) {
			t.Errorf("no %q in MediaMTX's exchange with sluice %v", want, got)
		}
	}
	for _, e := range got {
		if code := e[strings.IndexByte(e, ' ')+1:]; code[0] != '2' {
			t.Errorf("MediaMTX got %s", e)
		}
	}
}

// exchangeLog records "METHOD status" of the requests through a proxy.
type exchangeLog struct {
	mu sync.Mutex
	l  []string
}

func (e *exchangeLog) add(s string) {
	e.mu.Lock()
	e.l = append(e.l, s)
	e.mu.Unlock()
}

func (e *exchangeLog) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.l)
}

func getPath(ctx context.Context, hc *http.Client, url string) (mtxPath, error) {
	var p mtxPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return p, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("%s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		return p, errors.Join(errors.New("decoding the path"), err)
	}
	return p, nil
}

// hasCodecs reports whether the path has a track of each codec.
func hasCodecs(p mtxPath, codecs ...string) bool {
	var have []string
	have = append(have, p.Tracks...)
	for _, t := range p.Tracks2 {
		have = append(have, t.Codec)
	}
	for _, c := range codecs {
		if !slices.Contains(have, c) {
			return false
		}
	}
	return true
}
