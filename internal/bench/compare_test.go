package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMediaMTXConfig(t *testing.T) {
	tmpl := filepath.Join(t.TempDir(), "mediamtx.yml")
	const in = "# comment\nlogLevel: warn\nwebrtc: yes\nwebrtcAddress: 127.0.0.1:8889\nwebrtcLocalUDPAddress: 127.0.0.1:8189\nwebrtcAdditionalHosts: [127.0.0.1]\npaths:\n  all_others:\n"
	if err := os.WriteFile(tmpl, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := mediaMTXConfig(tmpl, "127.0.0.1:1111", "127.0.0.1:2222", "", "")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer("8889", "1111", "8189", "2222").Replace(in)
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	// RTSP on: a top-level rtsp is set, the missing keys are added.
	out, err = mediaMTXConfig(tmpl, "127.0.0.1:1111", "127.0.0.1:2222", "127.0.0.1:3333", "")
	if err != nil {
		t.Fatal(err)
	}
	if want += "rtsp: yes\nrtspAddress: 127.0.0.1:3333\nrtspTransports: [tcp]\n"; string(out) != want {
		t.Errorf("with RTSP: got\n%s\nwant\n%s", out, want)
	}
	// pprof on: pprof: no is turned on, pprofAddress added.
	if err := os.WriteFile(tmpl, []byte("pprof: no\n"+in), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = mediaMTXConfig(tmpl, "127.0.0.1:1111", "127.0.0.1:2222", "", "127.0.0.1:4444")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "pprof: yes\n") || !strings.HasSuffix(string(out), "\npprofAddress: 127.0.0.1:4444\n") || strings.Count(string(out), "pprof:") != 1 {
		t.Errorf("pprof not turned on once:\n%s", out)
	}
	if err := os.WriteFile(tmpl, []byte("rtsp: no\n"+in), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = mediaMTXConfig(tmpl, "127.0.0.1:1111", "127.0.0.1:2222", "127.0.0.1:3333", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "rtsp: yes\n") || strings.Count(string(out), "rtsp:") != 1 {
		t.Errorf("rtsp: no not turned on once:\n%s", out)
	}
	if err := os.WriteFile(tmpl, []byte("webrtc: yes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := mediaMTXConfig(tmpl, "a", "b", "", ""); err == nil {
		t.Error("a template without the addresses was accepted")
	}
}

func TestRatios(t *testing.T) {
	s := &Report{Setup: Percentiles{N: 1, P99: 50}, TTFF: Percentiles{N: 1, P99: 100}, Server: &ServerReport{CPUUsPerPacket: 5, RSSPerViewerKB: 400}}
	m := &Report{Setup: Percentiles{N: 1, P99: 100}, TTFF: Percentiles{N: 1, P99: 1000}, Server: &ServerReport{CPUUsPerPacket: 10, RSSPerViewerKB: 4000}}
	r := ratios(s, m)
	if r.SetupP99 != 0.5 || r.TTFFP99 != 0.1 || r.CPUUsPerPacket != 0.5 || r.RSSPerViewer != 0.1 || r.LatencyP99 != 0 {
		t.Errorf("%+v", r)
	}
	if r := ratios(nil, m); r != (Ratios{}) {
		t.Errorf("missing side: %+v", r)
	}
}

// TestSluiceProcess runs the real binary as Compare does: start on free
// ports, a short run with its PID, stop on SIGTERM, and the table.
func TestSluiceProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the sluice binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-media/sluice/cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	srv, err := startSluiceProc(bin, nil, dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{WHIP: srv.whip, WHEP: srv.whep, Viewers: 2, Lead: time.Second, Duration: 2 * time.Second, Timeout: 15 * time.Second, PID: srv.pid()}
	ctx, cancel := context.WithTimeout(t.Context(), cfg.MaxRunTime())
	defer cancel()
	rep, err := Run(ctx, cfg)
	if stopErr := srv.stop(); stopErr != nil {
		t.Error(stopErr)
	}
	if err != nil {
		t.Fatalf("%v%s", err, srv.logTail())
	}
	if rep.Viewers.Connected != 2 || rep.Server == nil || rep.Server.PID != srv.pid() || rep.Server.CPUUsPerPacket <= 0 {
		t.Errorf("report %+v, server %+v", rep.Viewers, rep.Server)
	}
	res := &CompareResult{Machine: Machine(), Scenarios: []Scenario{{Viewers: 2, Sluice: rep, MediaMTXError: "not run"}}}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"2/2", "failed", "MediaMTX, 2 viewers: not run", "conditions"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}
