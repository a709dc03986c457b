package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/server"
)

func TestMain(m *testing.M) {
	// Run closes every viewer and the publisher; nothing may outlive it.
	goleak.VerifyTestMain(m)
}

// startSluice runs sluice in-process on loopback with OS-picked ports and
// returns its base URL.
func startSluice(t *testing.T) string {
	t.Helper()
	return "http://" + startSluiceServer(t).HTTPAddr().String()
}

// startSluiceServer is startSluice returning the server.
func startSluiceServer(t *testing.T) *server.Server {
	t.Helper()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.RTMP.Listen, cfg.SRT.Listen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.WebRTC.UDPPort = 0
	cfg.WebRTC.ListenIPs = []string{"127.0.0.1"}
	cfg.RTSP = config.RTSP{Listen: "127.0.0.1:0"} // TCP only: RTSP's UDP ports are fixed pairs
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server Close: %v", err)
		}
	})
	return srv
}

// TestRunAgainstSluice checks that a small run reports sane fields; it
// asserts nothing about speed.
func TestRunAgainstSluice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		media MediaConfig
	}{
		{"clip", MediaConfig{VideoBitrate: 1_000_000}},
		{"synthetic", MediaConfig{Source: SourceSynthetic, Width: 640, Height: 360, VideoBitrate: 800_000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := startSluice(t)
			var progress bytes.Buffer
			cfg := Config{
				WHIP:     base + "/whip/bench",
				WHEP:     base + "/whep/bench",
				Viewers:  3,
				Batch:    2,
				Lead:     time.Second,
				Warmup:   500 * time.Millisecond,
				Duration: 3 * time.Second,
				Timeout:  15 * time.Second,
				Media:    tc.media,
				PID:      os.Getpid(), // this process: exercises /proc, numbers include the clients
				Progress: &progress,
			}
			ctx, cancel := context.WithTimeout(t.Context(), cfg.MaxRunTime())
			defer cancel()
			rep, err := Run(ctx, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
			}
			v := rep.Viewers
			if v.Requested != 3 || v.Connected != 3 || v.Failed != 0 || v.EndedEarly != 0 || v.WithKeyframe != 3 {
				t.Errorf("viewers %+v", v)
			}
			// 3 viewers within the run's bounds: a rate above 0 and at most
			// 3 per the smallest possible time (one millisecond).
			if v.SetupsPerS <= 0 || v.SetupsPerS > 3000 {
				t.Errorf("setup rate %.1f/s", v.SetupsPerS)
			}
			d := rep.Delivery
			if d.PacketsPerS <= 0 || d.Mbps <= 0 || d.Expected <= 0 {
				t.Errorf("delivery %+v", d)
			}
			// Packets in flight skew a 3 s window, the more so on a busy
			// machine: only a gross error fails.
			if d.Ratio < 0.5 || d.Ratio > 2 {
				t.Errorf("delivery ratio %.3f, want about 1", d.Ratio)
			}
			if d.LossPercent > 1 {
				t.Errorf("loss %.2f %%", d.LossPercent)
			}
			if kbps := rep.Media.SentVideoKbps; kbps < 0.8*rep.Media.TargetVideoKbps || kbps > 1.5*rep.Media.TargetVideoKbps {
				t.Errorf("sent %.0f kbit/s for a target of %.0f", kbps, rep.Media.TargetVideoKbps)
			}
			for name, p := range map[string]Percentiles{"setup": rep.Setup, "ttff": rep.TTFF, "latency": rep.Latency} {
				if p.N == 0 || p.P50 <= 0 || p.P50 > p.P99 || p.P99 > p.Max {
					t.Errorf("%s percentiles %+v", name, p)
				}
			}
			if rep.Setup.N != 3 || rep.TTFF.N != 3 || d.Stamps != rep.Latency.N {
				t.Errorf("samples: setup %d, ttff %d, latency %d, stamps %d", rep.Setup.N, rep.TTFF.N, rep.Latency.N, d.Stamps)
			}
			// A viewer gets every access unit in the window, 25 a second; a
			// third of them is plenty on a busy machine.
			if min := 3 * 25 * 3 / 3; rep.Latency.N < min {
				t.Errorf("%d latency samples, want at least %d", rep.Latency.N, min)
			}
			if s := rep.Server; s == nil || s.CPUUsPerPacket <= 0 || s.CPUPercent <= 0 || s.RSSBeforeKB <= 0 {
				t.Errorf("server %+v", s)
			}
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"3 of 3 connected", "setup p50/p99/max", "µs/packet"} {
				if !strings.Contains(table.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, table.String())
				}
			}
			t.Logf("report:\n%s", table.String())
			if _, err := json.Marshal(rep); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(progress.String(), "\r") {
				t.Error("no progress bar drawn")
			}
		})
	}
}

func TestRunErrors(t *testing.T) {
	base := startSluice(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bad := []Config{
		{WHIP: base + "/whip/x", Viewers: 1, Duration: time.Second},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x", Viewers: 0, Duration: time.Second},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x", Viewers: 1},
		{WHIP: base + "/whip/x", WHEP: base + "/whep/x", Viewers: 1, Duration: time.Second, Media: MediaConfig{Source: "nope"}},
	}
	for i, cfg := range bad {
		if _, err := Run(ctx, cfg); err == nil {
			t.Errorf("config %d accepted", i)
		}
	}
	// Viewers of another stream get 404 until the timeout: every one fails
	// and the report says why.
	rep, err := Run(ctx, Config{
		WHIP: base + "/whip/a", WHEP: base + "/whep/b", Viewers: 2, Lead: 100 * time.Millisecond,
		Duration: time.Second, Timeout: time.Second,
	})
	if err == nil || rep == nil || rep.Viewers.Failed != 2 || len(rep.Viewers.Errors) != 1 {
		t.Fatalf("err %v, report %+v", err, rep)
	}
}

// TestRunManyStreams: three publishers on streams of their own and four
// viewers spread over them (2, 1, 1); each stream's viewers get its
// packets and its stamps (latency is matched per stream), and the report
// counts what came in as well as what went out.
func TestRunManyStreams(t *testing.T) {
	base := startSluice(t)
	cfg := Config{
		WHIP: base + "/whip/many", WHEP: base + "/whep/many",
		Viewers: 4, Streams: 3, Batch: 4,
		Lead: time.Second, Warmup: 500 * time.Millisecond, Duration: 2 * time.Second, Timeout: 15 * time.Second,
		Media:         MediaConfig{VideoBitrate: 300_000},
		PID:           os.Getpid(),
		GoroutinesURL: base + "/metrics",
	}
	ctx, cancel := context.WithTimeout(t.Context(), cfg.MaxRunTime())
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := rep.Streams
	if st.Count != 3 || len(st.PerStream) != 3 {
		t.Fatalf("streams %+v", st)
	}
	for i, p := range st.PerStream {
		want := []int{2, 1, 1}[i]
		if p.Viewers != want || p.SentPacketsPerS <= 0 || p.DeliveredPacketsPerS <= 0 || !strings.HasSuffix(p.WHIP, "/whip/many-"+strconv.Itoa(i+1)) {
			t.Errorf("stream %d: %+v, want %d viewers getting packets", i, p, want)
		}
		// Each viewer gets about what its publisher sent.
		if r := p.DeliveredPacketsPerS / (p.SentPacketsPerS * float64(p.Viewers)); r < 0.5 || r > 2 {
			t.Errorf("stream %d delivered %.0f of %.0f × %d", i, p.DeliveredPacketsPerS, p.SentPacketsPerS, p.Viewers)
		}
	}
	var sum float64
	for _, p := range st.PerStream {
		sum += p.SentPacketsPerS
	}
	if math.Abs(st.IngestedPacketsPerS-sum) > 1e-6*sum {
		t.Errorf("ingested %.0f/s, streams sent %.0f/s", st.IngestedPacketsPerS, sum)
	}
	// Stamps of every stream matched (a viewer looking in another
	// stream's log would find most indexes missing or far off).
	if rep.Latency.N < 4*25 || rep.Latency.P99 > 1000 {
		t.Errorf("latency %+v", rep.Latency)
	}
	if s := rep.Server; s == nil || s.CPUUsPerIngestedPacket <= 0 {
		t.Errorf("server %+v", s)
	}
	if rep.AllocBytesPerS <= 0 {
		t.Errorf("allocation rate %.0f B/s, want the server's", rep.AllocBytesPerS)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "3 publishers") || !strings.Contains(table.String(), "per ingested packet") {
		t.Errorf("table:\n%s", table.String())
	}
}
