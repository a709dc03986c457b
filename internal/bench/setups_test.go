package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// TestRunSetups opens and closes a few WHEP sessions against an in-process
// sluice; it asserts that every session went the whole way and that the
// report holds its figures, nothing about speed.
func TestRunSetups(t *testing.T) {
	base := startSluice(t)
	var progress bytes.Buffer
	cfg := SetupsConfig{
		WHIP: base + "/whip/setups", WHEP: base + "/whep/setups",
		Sessions: 6, Concurrency: 3,
		Lead: 500 * time.Millisecond, Baseline: 500 * time.Millisecond, Timeout: 15 * time.Second,
		Media:      MediaConfig{VideoBitrate: 300_000},
		PID:        os.Getpid(), // this process: exercises /proc, numbers include the clients
		MetricsURL: base + "/metrics",
		Progress:   &progress,
	}
	ctx, cancel := context.WithTimeout(t.Context(), cfg.MaxRunTime())
	defer cancel()
	rep, err := RunSetups(ctx, cfg)
	if err != nil {
		t.Fatalf("RunSetups: %v\nprogress:\n%s", err, progress.String())
	}
	if rep.Requested != 6 || rep.Completed != 6 || rep.Failed != 0 || rep.Concurrency != 3 || len(rep.Errors) != 0 {
		t.Errorf("report %+v", rep)
	}
	for name, p := range map[string]Percentiles{"setup": rep.Setup, "first packet": rep.FirstPacket, "teardown": rep.Teardown} {
		if p.N != 6 || p.P50 <= 0 || p.P50 > p.P99 || p.P99 > p.Max {
			t.Errorf("%s percentiles %+v", name, p)
		}
	}
	if rep.WallS <= 0 || rep.SetupsPerS <= 0 || rep.SetupsPerS > 6/rep.WallS*1.0001 {
		t.Errorf("%.1f setups/s in %.2f s", rep.SetupsPerS, rep.WallS)
	}
	s := rep.Server
	if s == nil || s.PID != os.Getpid() || s.RSSBeforeKB <= 0 || s.RSSAfterKB <= 0 || s.GoroutinesBefore <= 0 {
		t.Fatalf("server %+v", s)
	}
	// This process set the sessions up on both ends: it spent CPU and
	// allocated for them.
	if s.CPUMsPerSetup <= 0 || s.SetupsPerCoreS <= 0 || s.AllocKBPerSetup <= 0 {
		t.Errorf("server %+v", s)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"6 of 6 completed", "first packet p50/p99/max", "setups per core-second", "KiB per setup"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	t.Logf("report:\n%s", table.String())
	if _, err := json.Marshal(rep); err != nil {
		t.Fatal(err)
	}
}

func TestRunSetupsErrors(t *testing.T) {
	base := startSluice(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bad := []SetupsConfig{
		{WHIP: base + "/whip/x", Sessions: 1},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x"},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x", Sessions: 1, Concurrency: 1001},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x", Sessions: 1, Timeout: time.Millisecond},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x", Sessions: 1, Media: MediaConfig{Source: "nope"}},
	}
	for i, cfg := range bad {
		if _, err := RunSetups(ctx, cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	// Sessions of another stream get 404: every one fails, none is
	// retried, and the report says why.
	rep, err := RunSetups(ctx, SetupsConfig{
		WHIP: base + "/whip/a", WHEP: base + "/whep/b", Sessions: 3, Concurrency: 2,
		Lead: 100 * time.Millisecond, Baseline: 100 * time.Millisecond, Timeout: 5 * time.Second,
	})
	if err == nil || rep == nil || rep.Failed != 3 || rep.Completed != 0 || len(rep.Errors) != 1 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
	for e := range rep.Errors {
		if !strings.Contains(e, "404") {
			t.Errorf("error %q, want the 404", e)
		}
	}
}

// TestScrapeAllocated reads both forms: Prometheus and a pprof heap page.
func TestScrapeAllocated(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "# TYPE go_memstats_alloc_bytes_total counter\ngo_memstats_alloc_bytes_total 1.5e+06\ngo_goroutines 7\n")
	})
	mux.HandleFunc("/debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("debug") != "1" {
			http.Error(w, "binary", http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, "heap profile: 1: 2 [3: 4] @ heap/1048576\n\n# runtime.MemStats\n# Alloc = 100\n# TotalAlloc = 123456\n# Sys = 7\n")
	})
	mux.HandleFunc("/debug/pprof/empty", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "# Alloc = 1\n") })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, tc := range []struct {
		path string
		want float64
	}{{"/metrics", 1.5e6}, {"/debug/pprof/heap?debug=1", 123456}} {
		got, err := scrapeAllocated(t.Context(), srv.URL+tc.path)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
	for _, path := range []string{"/debug/pprof/empty", "/debug/pprof/heap", "/nothing"} {
		if v, err := scrapeAllocated(t.Context(), srv.URL+path); err == nil {
			t.Errorf("%s: %v accepted", path, v)
		}
	}
}

func TestSetupsTable(t *testing.T) {
	s := &SetupsReport{Requested: 10, Completed: 10, SetupsPerS: 100, Setup: Percentiles{N: 10, P99: 20}, FirstPacket: Percentiles{N: 10, P99: 30},
		Server: &SetupsServerReport{CPUMsPerSetup: 2, SetupsPerCoreS: 500, AllocKBPerSetup: 300}}
	m := &SetupsReport{Requested: 10, Completed: 9, Failed: 1, Errors: map[string]int{"timeout": 1}, SetupsPerS: 25, Setup: Percentiles{N: 9, P99: 1000}, FirstPacket: Percentiles{N: 9, P99: 1000},
		Server: &SetupsServerReport{CPUMsPerSetup: 5, SetupsPerCoreS: 200, AllocKBPerSetup: 1200}}
	sc := &SetupsScenario{Sessions: 10, Concurrency: 5, Sluice: s, MediaMTX: m, Ratios: setupsRatios(s, m)}
	if r := sc.Ratios; r.SetupsPerCoreS != 2.5 || r.SetupsPerS != 4 || r.CPUMsPerSetup != 0.4 || r.SetupP99 != 0.02 || r.AllocKBPerSetup != 0.25 {
		t.Errorf("ratios %+v", r)
	}
	if r := setupsRatios(nil, m); r != (SetupsRatios{}) {
		t.Errorf("missing side: %+v", r)
	}
	res := &CompareResult{Machine: "m", Setups: sc}
	var table bytes.Buffer
	if err := res.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"setups per core-second 2.50", "10/10", "9/10", "1× timeout"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if strings.Contains(table.String(), "conditions") {
		t.Errorf("table of a setups-only comparison has the viewer tables:\n%s", table.String())
	}
}
