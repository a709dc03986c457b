package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"text/tabwriter"
	"time"
)

// CompareConfig runs the same scenarios against MediaMTX and sluice, each
// started fresh per scenario as a child process on loopback.
type CompareConfig struct {
	SluiceBin string
	// SluiceArgs are added to sluice's flags.
	SluiceArgs  []string
	MediaMTXBin string
	// MediaMTXConfig is the YAML file the MediaMTX configuration is derived
	// from (its WebRTC addresses are moved to free ports).
	MediaMTXConfig string
	// Viewers lists the fan-out scenarios: one publisher, that many
	// viewers.
	Viewers []int
	// Streams lists the many-stream scenarios: that many publishers, each
	// on its own stream with one viewer.
	Streams []int
	// RTSPReaders lists the RTSP fan-out scenarios: one publisher (WHIP),
	// that many RTSP readers over TCP. MediaMTX gets its RTSP server on a
	// free port for them.
	RTSPReaders []int
	// Setups, when > 0, adds the setup-rate scenario: one publisher, that
	// many short WHEP sessions (RunSetups), SetupConcurrency at a time (10
	// when 0), none started after SetupMaxTime (2 min when 0).
	Setups           int
	SetupConcurrency int
	SetupMaxTime     time.Duration
	// Run is the template for every run: media, batch, lead, warm-up,
	// duration, timeout, progress. Its URLs, Viewers and PID are set per
	// scenario.
	Run Config
	// WorkDir receives the configurations and server logs; a new
	// temporary folder when empty (kept, so that logs can be read).
	WorkDir string
	// Log receives one line per phase; nil for none.
	Log io.Writer
	// Settle is the longest wait, before each run, for the machine to be
	// quiet (under QuietPercent of all cores busy over a second): other
	// programs' load would be counted against both servers at random.
	// 0 does not wait.
	Settle time.Duration
	// QuietPercent is the busy share of all cores under which the machine
	// counts as quiet: 15 when 0.
	QuietPercent float64
	// Retries is how many times a run is repeated when other load
	// disturbed it (Report.OtherCPUPercent over DisturbedPercent); the
	// least disturbed attempt is kept.
	Retries int
	// DisturbedPercent is the other load, in % of one core, above which a
	// run counts as disturbed: 30 when 0.
	DisturbedPercent float64
}

// CompareResult holds every scenario of a Compare.
type CompareResult struct {
	Date      time.Time  `json:"date"`
	Machine   string     `json:"machine"`
	GoVersion string     `json:"go_version"`
	WorkDir   string     `json:"work_dir"`
	Scenarios []Scenario `json:"scenarios"`
	// Setups is the setup-rate scenario, when asked for.
	Setups *SetupsScenario `json:"setups,omitempty"`
	Notes  []string        `json:"notes"`
}

// Scenario is one shape (publishers and viewers) against both servers.
type Scenario struct {
	Streams int `json:"streams"`
	Viewers int `json:"viewers"`
	// Reader is "rtsp" when the viewers are RTSP readers, "" for WHEP.
	Reader        string  `json:"reader,omitempty"`
	MediaMTX      *Report `json:"mediamtx,omitempty"`
	MediaMTXError string  `json:"mediamtx_error,omitempty"`
	Sluice        *Report `json:"sluice,omitempty"`
	SluiceError   string  `json:"sluice_error,omitempty"`
	// Ratios are sluice / MediaMTX; lower is better for sluice. A ratio is
	// 0 when either side lacks the number.
	Ratios Ratios `json:"ratios_sluice_over_mediamtx"`
}

// Ratios compare sluice with MediaMTX in one scenario.
type Ratios struct {
	CPUUsPerPacket  float64 `json:"cpu_us_per_packet"`
	UserUsPerPacket float64 `json:"user_us_per_packet"`
	RSSPerViewer    float64 `json:"rss_per_viewer"`
	SetupP99        float64 `json:"setup_p99"`
	TTFFP99         float64 `json:"ttff_p99"`
	LatencyP99      float64 `json:"latency_p99"`
	// ServerCPU compares CPU % of one core; CPUUsPerIngestedPacket and
	// RSSPerPublisher the publishers' side (many-stream shapes).
	ServerCPU              float64 `json:"server_cpu"`
	CPUUsPerIngestedPacket float64 `json:"cpu_us_per_ingested_packet"`
	RSSPerPublisher        float64 `json:"rss_per_publisher"`
	RSSPerStream           float64 `json:"rss_per_stream"`
}

// label names a scenario in tables and logs: "200" viewers of one stream,
// or "50x(1+1)" for 50 streams with a viewer each.
func (sc Scenario) label() string {
	if sc.Reader == "rtsp" {
		return strconv.Itoa(sc.Viewers) + "rtsp"
	}
	if sc.Streams <= 1 {
		return strconv.Itoa(sc.Viewers)
	}
	return fmt.Sprintf("%dx(1+%d)", sc.Streams, sc.Viewers/sc.Streams)
}

// describe names a scenario in sentences: "200 viewers", "50 streams × (1
// publisher + 1 viewer)".
func (sc Scenario) describe() string {
	if sc.Reader == "rtsp" {
		return fmt.Sprintf("%d RTSP readers", sc.Viewers)
	}
	if sc.Streams <= 1 {
		return fmt.Sprintf("%d viewers", sc.Viewers)
	}
	return fmt.Sprintf("%d streams × (1 publisher + %d viewer)", sc.Streams, sc.Viewers/sc.Streams)
}

// Compare runs every scenario, MediaMTX first, then sluice, each with a
// fresh server. A scenario that fails on one side is reported and the
// comparison goes on; Compare fails only if it cannot start.
func Compare(ctx context.Context, cc CompareConfig) (*CompareResult, error) {
	if len(cc.Viewers) == 0 && len(cc.Streams) == 0 && len(cc.RTSPReaders) == 0 && cc.Setups == 0 {
		return nil, errors.New("compare: no viewer, stream, RTSP reader or setup counts")
	}
	for _, bin := range []string{cc.SluiceBin, cc.MediaMTXBin, cc.MediaMTXConfig} {
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
	}
	dir := cc.WorkDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "sluice-bench-"); err != nil {
			return nil, err
		}
	}
	res := &CompareResult{
		Date:      time.Now().UTC().Truncate(time.Second),
		Machine:   Machine(),
		GoVersion: runtime.Version(),
		WorkDir:   dir,
		Notes: []string{
			fmt.Sprintf("the publisher, the viewers and the server share this machine's %d CPUs: client work competes with the server, so CPU%% and latencies are upper bounds", runtime.NumCPU()),
		},
	}
	if len(cc.Viewers)+len(cc.Streams)+len(cc.RTSPReaders) > 0 {
		res.Notes = append(res.Notes, "MediaMTX re-packetizes each access unit per viewer (payload ≤ 1188 bytes); sluice relays the publisher's packets (≤ 1200 bytes): packet counts differ slightly")
	}
	say := func(format string, args ...any) {
		if cc.Log != nil {
			fmt.Fprintf(cc.Log, format+"\n", args...)
		}
	}
	var shapes []Scenario
	for _, n := range cc.Viewers {
		shapes = append(shapes, Scenario{Streams: 1, Viewers: n})
	}
	for _, k := range cc.Streams {
		shapes = append(shapes, Scenario{Streams: k, Viewers: k})
	}
	for _, n := range cc.RTSPReaders {
		shapes = append(shapes, Scenario{Streams: 1, Viewers: n, Reader: "rtsp"})
	}
	for _, sc := range shapes {
		for _, side := range []string{"MediaMTX", "sluice"} {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			sub := filepath.Join(dir, side+"-"+sc.label())
			rep, err := compareRetrying(ctx, cc, side, sc, sub, say)
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			msg := ""
			if err != nil {
				msg = err.Error()
				say("%s, %s: %v", side, sc.describe(), err)
			}
			if side == "MediaMTX" {
				sc.MediaMTX, sc.MediaMTXError = rep, msg
			} else {
				sc.Sluice, sc.SluiceError = rep, msg
			}
		}
		sc.Ratios = ratios(sc.Sluice, sc.MediaMTX)
		res.Scenarios = append(res.Scenarios, sc)
	}
	if cc.Setups > 0 {
		sc, err := compareSetups(ctx, cc, dir, say)
		res.Setups = sc
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// compareRetrying runs one side of a scenario, again when other load
// disturbed it, and keeps the least disturbed attempt.
func compareRetrying(ctx context.Context, cc CompareConfig, side string, sc Scenario, dir string, say func(string, ...any)) (*Report, error) {
	return retrying(ctx, cc, side, sc.describe(), dir, say,
		func(sub string) (*Report, error) { return compareOne(ctx, cc, side, sc, sub) },
		func(r *Report) float64 { return r.OtherCPUPercent },
		func(r *Report, busy float64, note string) {
			r.MachineBusyBeforePercent = busy
			if note != "" {
				r.Notes = append(r.Notes, note)
			}
		})
}

// retrying runs one attempt after waiting for a quiet machine, again when
// other load took more than cc.DisturbedPercent of a core during it (other
// of the report), and keeps the least disturbed attempt. mark records the
// machine's busy share before the kept attempt and a note on retries.
func retrying[R comparable](ctx context.Context, cc CompareConfig, side, desc, dir string, say func(string, ...any),
	run func(dir string) (R, error), other func(R) float64, mark func(r R, busy float64, note string)) (R, error) {
	limit := cc.DisturbedPercent
	if limit == 0 {
		limit = 30
	}
	var none, best R
	var bestErr error
	for attempt := 0; attempt <= max(cc.Retries, 0); attempt++ {
		busy, quiet, err := waitQuiet(ctx, cc.Settle, cc.QuietPercent)
		if err != nil {
			return best, err
		}
		sub := filepath.Join(dir, "attempt-"+strconv.Itoa(attempt+1))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return best, err
		}
		say("== %s, %s, attempt %d (logs in %s; machine %.0f %% busy before the start%s)",
			side, desc, attempt+1, sub, busy, map[bool]string{true: "", false: ", not quiet"}[quiet])
		rep, err := run(sub)
		if rep != none {
			note := ""
			if attempt > 0 {
				note = fmt.Sprintf("attempt %d: earlier attempts were disturbed by other load", attempt+1)
			}
			mark(rep, busy, note)
		}
		if attempt == 0 || (rep != none && (best == none || other(rep) < other(best))) {
			best, bestErr = rep, err
		}
		if ctx.Err() != nil || (rep != none && other(rep) <= limit) {
			break
		}
		if rep != none && attempt < cc.Retries {
			say("%s, %s: %.0f %% of a core went to other programs during the run; again", side, desc, other(rep))
		}
	}
	return best, bestErr
}

func compareOne(ctx context.Context, cc CompareConfig, side string, sc Scenario, dir string) (*Report, error) {
	var srv *serverProc
	var err error
	if side == "sluice" {
		srv, err = startSluiceProc(cc.SluiceBin, cc.SluiceArgs, dir)
	} else {
		srv, err = startMediaMTXProc(cc.MediaMTXBin, cc.MediaMTXConfig, dir, sc.Reader == "rtsp")
	}
	if err != nil {
		return nil, err
	}
	cfg := cc.Run
	cfg.WHIP, cfg.WHEP, cfg.Viewers, cfg.Streams, cfg.PID = srv.whip, srv.whep, sc.Viewers, sc.Streams, srv.pid()
	cfg.GoroutinesURL, cfg.AllocURL = srv.metrics, srv.alloc
	if sc.Reader == "rtsp" {
		cfg.RTSP = srv.rtsp
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.MaxRunTime())
	defer cancel()
	rep, err := Run(rctx, cfg)
	if stopErr := srv.stop(); stopErr != nil {
		err = errors.Join(err, stopErr)
	}
	if err != nil {
		err = fmt.Errorf("%w%s", err, srv.logTail())
	}
	return rep, err
}

func ratios(s, m *Report) Ratios {
	if s == nil || m == nil {
		return Ratios{}
	}
	div := func(a, b float64) float64 {
		if a <= 0 || b <= 0 {
			return 0
		}
		return a / b
	}
	r := Ratios{
		SetupP99:   div(s.Setup.P99, m.Setup.P99),
		TTFFP99:    div(s.TTFF.P99, m.TTFF.P99),
		LatencyP99: div(s.Latency.P99, m.Latency.P99),
	}
	if s.Server != nil && m.Server != nil {
		r.CPUUsPerPacket = div(s.Server.CPUUsPerPacket, m.Server.CPUUsPerPacket)
		r.UserUsPerPacket = div(s.Server.UserUsPerPacket, m.Server.UserUsPerPacket)
		r.RSSPerViewer = div(s.Server.RSSPerViewerKB, m.Server.RSSPerViewerKB)
		r.ServerCPU = div(s.Server.CPUPercent, m.Server.CPUPercent)
		r.CPUUsPerIngestedPacket = div(s.Server.CPUUsPerIngestedPacket, m.Server.CPUUsPerIngestedPacket)
		r.RSSPerPublisher = div(s.Streams.RSSPerPublisherKB, m.Streams.RSSPerPublisherKB)
		r.RSSPerStream = div(s.Streams.RSSPerStreamKB, m.Streams.RSSPerStreamKB)
	}
	return r
}

// WriteTable writes every scenario side by side and the ratios.
func (c *CompareResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "machine: %s; %s; %s\n", c.Machine, c.GoVersion, c.Date.Format(time.RFC3339))
	fmt.Fprintf(w, "times in ms; CPU and RSS are the server process's, from /proc\n")
	if len(c.Scenarios) > 0 {
		if err := c.writeScenarios(w); err != nil {
			return err
		}
	}
	if c.Setups != nil {
		if err := c.Setups.writeTable(w); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// writeScenarios writes the fan-out and many-stream scenarios side by side
// and their ratios.
func (c *CompareResult) writeScenarios(w io.Writer) error {
	fmt.Fprintln(w)
	type row struct {
		n    string
		name string
		r    *Report
	}
	var rows []row
	many := false
	for _, sc := range c.Scenarios {
		rows = append(rows, row{sc.label(), "MediaMTX", sc.MediaMTX}, row{sc.label(), "sluice", sc.Sluice})
		many = many || sc.Streams > 1
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "viewers\tserver\tconnected\tsetup p50\tsetup p99\tTTFF p50\tTTFF p99\tlatency p50\tlatency p99\tdelivered pkt/s\tMbit/s\tloss %\tCPU µs/pkt\tuser µs/pkt\tRSS KiB/viewer\t")
	for _, x := range rows {
		r := x.r
		if r == nil {
			fmt.Fprintf(tw, "%s\t%s\tfailed\t\t\t\t\t\t\t\t\t\t\t\t\t\n", x.n, x.name)
			continue
		}
		cpu, user, rss := "-", "-", "-"
		if s := r.Server; s != nil {
			cpu, user, rss = fmt.Sprintf("%.2f", s.CPUUsPerPacket), fmt.Sprintf("%.2f", s.UserUsPerPacket), fmt.Sprintf("%.0f", s.RSSPerViewerKB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.1f\t%.3f\t%s\t%s\t%s\t\n",
			x.n, x.name, r.Viewers.Connected, r.Viewers.Requested,
			pctl(r.Setup.N, r.Setup.P50), pctl(r.Setup.N, r.Setup.P99),
			pctl(r.TTFF.N, r.TTFF.P50), pctl(r.TTFF.N, r.TTFF.P99),
			pctl(r.Latency.N, r.Latency.P50), pctl(r.Latency.N, r.Latency.P99),
			r.Delivery.PacketsPerS, r.Delivery.Mbps, r.Delivery.LossPercent, cpu, user, rss)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nconditions (CPU in % of one core; busy before in % of all cores)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "viewers\tserver\tserver CPU %\tserver alloc MB/s\tclient CPU %\tmachine CPU %\tother CPU %\tksoftirqd %\tbusy before %\tUDP rcvbuf drops\tdelivery ratio\tkeyframes\t")
	for _, x := range rows {
		r := x.r
		if r == nil {
			continue
		}
		srv := "-"
		if r.Server != nil {
			srv = fmt.Sprintf("%.0f", r.Server.CPUPercent)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\t%.3f\t%d/%d\t\n", x.n, x.name, srv, allocMB(r.AllocBytesPerS), r.ClientCPUPercent, r.MachineCPUPercent,
			r.OtherCPUPercent, r.SoftirqCPUPercent, r.MachineBusyBeforePercent, r.UDPRcvbufErrors, r.Delivery.Ratio, r.Viewers.WithKeyframe, r.Viewers.Connected)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if many {
		fmt.Fprintln(w, "\nmany streams (the publishers' side; RSS growth from before the first publisher: to after the lead per publisher, to the end of the warm-up per stream)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "streams\tserver\tingested pkt/s\tserver CPU %\tCPU µs/ingested pkt\tRSS KiB/publisher\tRSS KiB/stream\t")
		for _, x := range rows {
			r := x.r
			if r == nil || r.Streams.Count <= 1 || r.Server == nil {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.2f\t%.0f\t%.0f\t\n", x.n, x.name, r.Streams.IngestedPacketsPerS, r.Server.CPUPercent,
				r.Server.CPUUsPerIngestedPacket, r.Streams.RSSPerPublisherKB, r.Streams.RSSPerStreamKB)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w, "\nsluice / MediaMTX (below 1: sluice uses less or is faster)")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "viewers\tCPU µs/pkt\tuser µs/pkt\tRSS/viewer\tsetup p99\tTTFF p99\tlatency p99\tserver CPU\tRSS/publisher\tRSS/stream\t")
	for _, sc := range c.Scenarios {
		r := sc.Ratios
		rssPub, rssStream := "-", "-"
		if sc.Streams > 1 {
			rssPub, rssStream = ratio(r.RSSPerPublisher), ratio(r.RSSPerStream)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", sc.label(), ratio(r.CPUUsPerPacket), ratio(r.UserUsPerPacket), ratio(r.RSSPerViewer),
			ratio(r.SetupP99), ratio(r.TTFFP99), ratio(r.LatencyP99), ratio(r.ServerCPU), rssPub, rssStream)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, sc := range c.Scenarios {
		for _, e := range []struct{ name, err string }{{"MediaMTX", sc.MediaMTXError}, {"sluice", sc.SluiceError}} {
			if e.err != "" {
				fmt.Fprintf(w, "\n%s, %s: %s\n", e.name, sc.describe(), e.err)
			}
		}
		for _, r := range []*Report{sc.MediaMTX, sc.Sluice} {
			if r != nil && len(r.Viewers.Errors) > 0 {
				fmt.Fprintf(w, "\n%s, %s: viewer errors: %v\n", sc.describe(), r.WHEP, sortedErrors(r.Viewers.Errors))
			}
		}
	}
	return nil
}

func pctl(n int, v float64) string {
	if n == 0 {
		return "-"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func allocMB(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v/1e6)
}

func ratio(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", v)
}

// waitQuiet samples the machine's CPU each second until less than quietPct
// of all cores were busy over the last second, or until maxWait has passed.
// It returns the last sample in % of all cores.
func waitQuiet(ctx context.Context, maxWait time.Duration, quietPct float64) (busyPct float64, quiet bool, err error) {
	if quietPct == 0 {
		quietPct = 15
	}
	deadline := time.Now().Add(maxWait)
	b0, t0, err := machineTicks()
	if err != nil {
		return 0, false, nil // not Linux: nothing to wait for
	}
	for {
		select {
		case <-ctx.Done():
			return 0, false, ctx.Err()
		case <-time.After(time.Second):
		}
		b1, t1, err := machineTicks()
		if err != nil || t1 == t0 {
			return 0, false, nil
		}
		busyPct = 100 * float64(b1-b0) / float64(t1-t0)
		if busyPct < quietPct {
			return busyPct, true, nil
		}
		if !time.Now().Before(deadline) {
			return busyPct, false, nil
		}
		b0, t0 = b1, t1
	}
}
