package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// SetupsConfig is a setup-rate run: one publisher, then Sessions short WHEP
// sessions, Concurrency at a time, each one offer POST → answer → ICE and
// DTLS connected → first RTP packet → DELETE.
type SetupsConfig struct {
	WHIP, WHEP string
	// Token, when set, is sent as a bearer token by the publisher and by
	// every session.
	Token string
	// Sessions is how many sessions to open in all (1..MaxViewers).
	Sessions int
	// Concurrency is how many are in flight at once (1..1000; 10 when 0).
	Concurrency int
	// Lead is how long the publisher sends before the baseline: 2 s when 0.
	Lead time.Duration
	// Baseline is the window, after the lead, in which the server's CPU
	// and allocation with the publisher alone are measured, to be taken
	// off the sessions' figures: 3 s when 0.
	Baseline time.Duration
	// Timeout bounds each session (setup and first packet): 20 s when 0.
	Timeout time.Duration
	// MaxTime bounds the sessions phase: no session starts after it
	// (those running finish within Timeout). 2 min when 0.
	MaxTime time.Duration
	// Media is what the publisher sends.
	Media MediaConfig
	// PID, when > 0, is the server process whose CPU time and RSS are
	// read from /proc.
	PID int
	// MetricsURL, when set, is the server's Prometheus endpoint (sluice:
	// /metrics) for go_goroutines before and after.
	MetricsURL string
	// AllocURL, when set, gives the server's bytes allocated so far:
	// Prometheus go_memstats_alloc_bytes_total, or a Go pprof heap page
	// (/debug/pprof/heap?debug=1, "# TotalAlloc"). MetricsURL when empty.
	AllocURL string
	// Progress receives a progress bar and phase lines; nil for none.
	Progress io.Writer
}

// setupsSettle is the wait after the last session closed before the
// server's CPU is read again, so that its teardown work is counted.
const setupsSettle = time.Second

func (c SetupsConfig) withDefaults() (SetupsConfig, error) {
	if c.Concurrency == 0 {
		c.Concurrency = 10
	}
	if c.Lead == 0 {
		c.Lead = 2 * time.Second
	}
	if c.Baseline == 0 {
		c.Baseline = 3 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
	}
	if c.MaxTime == 0 {
		c.MaxTime = 2 * time.Minute
	}
	if c.AllocURL == "" {
		c.AllocURL = c.MetricsURL
	}
	switch {
	case c.WHIP == "" || c.WHEP == "":
		return c, errors.New("a WHIP and a WHEP URL are needed")
	case c.Sessions < 1 || c.Sessions > MaxViewers:
		return c, fmt.Errorf("sessions %d: want 1..%d", c.Sessions, MaxViewers)
	case c.Concurrency < 1 || c.Concurrency > 1000:
		return c, fmt.Errorf("concurrency %d: want 1..1000", c.Concurrency)
	case c.Lead < 0 || c.Lead > time.Minute:
		return c, fmt.Errorf("lead %v: want 0..1m", c.Lead)
	case c.Baseline < 0 || c.Baseline > time.Minute:
		return c, fmt.Errorf("baseline %v: want 0..1m", c.Baseline)
	case c.Timeout < time.Second || c.Timeout > 5*time.Minute:
		return c, fmt.Errorf("timeout %v: want 1s..5m", c.Timeout)
	case c.MaxTime <= 0 || c.MaxTime > maxDuration:
		return c, fmt.Errorf("max time %v: want more than 0 and at most %v", c.MaxTime, maxDuration)
	}
	return c, nil
}

// MaxRunTime is an upper bound on how long RunSetups takes with this
// config, for an overall deadline.
func (c SetupsConfig) MaxRunTime() time.Duration {
	c, _ = c.withDefaults()
	const closeBound = 12 * time.Second // client DELETE timeout and PeerConnection close
	return c.Timeout + c.Lead + c.Baseline + c.MaxTime + c.Timeout + closeBound + setupsSettle + 30*time.Second
}

// SetupsReport is the result of RunSetups. Times are in milliseconds.
type SetupsReport struct {
	Date  time.Time `json:"date"`
	WHIP  string    `json:"whip"`
	WHEP  string    `json:"whep"`
	Media string    `json:"media"`
	// Requested sessions; Completed reached their first media packet and
	// were deleted without error; Failed did not.
	Requested   int            `json:"requested"`
	Concurrency int            `json:"concurrency"`
	Completed   int            `json:"completed"`
	Failed      int            `json:"failed"`
	Errors      map[string]int `json:"errors,omitempty"`
	// WallS is the sessions phase: the first POST to the last session
	// closed.
	WallS float64 `json:"wall_s"`
	// SetupsPerS is Completed / WallS. The sessions' clients share the
	// machine with the server: a lower bound of the server's rate.
	SetupsPerS float64 `json:"setups_per_s"`
	// Setup is POST sent → PeerConnection connected (ICE and DTLS);
	// FirstPacket is POST sent → first RTP packet (video or audio);
	// Teardown is the client's DELETE and close.
	Setup       Percentiles `json:"setup_ms"`
	FirstPacket Percentiles `json:"first_packet_ms"`
	Teardown    Percentiles `json:"teardown_ms"`
	// ClientCPUPercent, MachineCPUPercent and OtherCPUPercent are as in
	// Report, over the sessions phase.
	ClientCPUPercent  float64 `json:"client_cpu_percent"`
	MachineCPUPercent float64 `json:"machine_cpu_percent"`
	OtherCPUPercent   float64 `json:"other_cpu_percent"`
	SoftirqCPUPercent float64 `json:"softirq_cpu_percent"`
	// MachineBusyBeforePercent is set by Compare.
	MachineBusyBeforePercent float64             `json:"machine_busy_before_percent,omitempty"`
	Server                   *SetupsServerReport `json:"server,omitempty"`
	Notes                    []string            `json:"notes,omitempty"`
}

// SetupsServerReport is what the server spent on the sessions.
type SetupsServerReport struct {
	PID int `json:"pid"`
	// BaselineCPUPercent is the server's CPU with the publisher alone, in
	// % of one core; it is taken off the figures below.
	BaselineCPUPercent float64 `json:"baseline_cpu_percent"`
	// CPUPercent is the server's CPU over the sessions phase, baseline
	// included.
	CPUPercent float64 `json:"cpu_percent"`
	// CPUMsPerSetup is the server's CPU time over the sessions phase and
	// the settle after it, less the baseline, over the completed sessions;
	// User and System split it.
	CPUMsPerSetup    float64 `json:"cpu_ms_per_setup"`
	UserMsPerSetup   float64 `json:"user_ms_per_setup"`
	SystemMsPerSetup float64 `json:"system_ms_per_setup"`
	// SetupsPerCoreS is 1000 / CPUMsPerSetup: the sessions one core of
	// the server's would set up and tear down per second.
	SetupsPerCoreS float64 `json:"setups_per_core_s"`
	// RSSBeforeKB is VmRSS before the first session, RSSAfterKB after the
	// last one closed and the settle.
	RSSBeforeKB int64 `json:"rss_before_kb"`
	RSSAfterKB  int64 `json:"rss_after_kb"`
	// AllocKBPerSetup is the server's allocation over the sessions phase,
	// less the baseline's rate, over the completed sessions (with an
	// allocation URL).
	AllocKBPerSetup float64 `json:"alloc_kb_per_setup,omitempty"`
	// GoroutinesBefore and GoroutinesAfter are go_goroutines before the
	// first session and after the settle (with a metrics URL).
	GoroutinesBefore float64 `json:"goroutines_before,omitempty"`
	GoroutinesAfter  float64 `json:"goroutines_after,omitempty"`
}

// serverSample is a reading of the server's counters.
type serverSample struct {
	at         time.Time
	user, sys  uint64 // ticks
	rss        int64  // KiB
	alloc      float64
	goroutines float64
}

func sampleServer(ctx context.Context, pid int, allocURL, metricsURL string) (serverSample, error) {
	s := serverSample{at: time.Now()}
	if pid > 0 {
		var err error
		if s.user, s.sys, err = cpuSplit(pid); err != nil {
			return s, err
		}
		if s.rss, err = rssKB(pid); err != nil {
			return s, err
		}
	}
	if allocURL != "" {
		s.alloc, _ = scrapeAllocated(ctx, allocURL)
	}
	if metricsURL != "" {
		s.goroutines, _ = scrapeGauge(ctx, metricsURL, "go_goroutines")
	}
	return s, nil
}

// setupResult is one session of a setups run.
type setupResult struct {
	ran                    bool
	setup, first, teardown time.Duration
	err                    error
}

// RunSetups publishes one stream, measures the server with the publisher
// alone, then opens and closes cfg.Sessions WHEP sessions, Concurrency at
// a time, and reports the rate and what the server spent per session.
// Every phase is bounded. With no session completed it returns the report
// and an error.
func RunSetups(ctx context.Context, cfg SetupsConfig) (*SetupsReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := prepareMedia(cfg.Media)
	if err != nil {
		return nil, err
	}
	pr := newProgress(cfg.Progress)
	defer pr.done()
	rc := Config{WHIP: cfg.WHIP, WHEP: cfg.WHEP, Token: cfg.Token, Streams: 1, Timeout: cfg.Timeout}
	r := &runner{cfg: rc, pr: pr, log: newSendLog(1 << 14), measuring: &atomic.Bool{},
		transport: &http.Transport{DisableKeepAlives: true}}
	r.logs = []*sendLog{r.log}
	defer r.transport.CloseIdleConnections()
	rep := &SetupsReport{
		Date: time.Now().UTC().Truncate(time.Second), WHIP: cfg.WHIP, WHEP: cfg.WHEP, Media: m.desc,
		Requested: cfg.Sessions, Concurrency: cfg.Concurrency,
	}

	pr.say("publishing to %s (%s)", cfg.WHIP, m.desc)
	pubs, err := r.publish(ctx, m)
	defer r.closePublishers(pubs)
	if err != nil {
		return nil, err
	}
	r.ended = func() error { return pubs[0].ended() }
	if err := r.wait(ctx, "lead", cfg.Lead, nil); err != nil {
		return nil, err
	}
	sample := func() (serverSample, error) { return sampleServer(ctx, cfg.PID, cfg.AllocURL, cfg.MetricsURL) }
	base0, err := sample()
	if err != nil {
		return nil, err
	}
	if err := r.wait(ctx, "baseline", cfg.Baseline, nil); err != nil {
		return nil, err
	}
	base1, err := sample()
	if err != nil {
		return nil, err
	}

	self0, _ := cpuTicks(os.Getpid())
	busy0, _, _ := machineTicks()
	softirqPIDs := softirqThreads()
	soft0 := ticksOf(softirqPIDs)
	results := r.runSetups(ctx, cfg)
	wall := time.Since(base1.at)
	self1, _ := cpuTicks(os.Getpid())
	busy1, _, _ := machineTicks()
	rep.SoftirqCPUPercent = 100 * float64(ticksOf(softirqPIDs)-soft0) / clockTicks / wall.Seconds()
	during, err := sample()
	if err != nil {
		return nil, err
	}
	if err := r.wait(ctx, "settle", setupsSettle, nil); err != nil {
		return nil, err
	}
	end, err := sample()
	if err != nil {
		return nil, err
	}

	var setup, first, teardown []time.Duration
	errs := map[string]int{}
	for _, res := range results {
		if !res.ran {
			continue
		}
		if res.err != nil {
			rep.Failed++
			if k := shortError(res.err); errs[k] > 0 || len(errs) < 10 {
				errs[k]++
			}
			continue
		}
		rep.Completed++
		setup, first, teardown = append(setup, res.setup), append(first, res.first), append(teardown, res.teardown)
	}
	if len(errs) > 0 {
		rep.Errors = errs
	}
	rep.WallS = wall.Seconds()
	rep.SetupsPerS = float64(rep.Completed) / wall.Seconds()
	rep.Setup, rep.FirstPacket, rep.Teardown = percentiles(setup), percentiles(first), percentiles(teardown)
	if self0 > 0 {
		rep.ClientCPUPercent = 100 * float64(self1-self0) / clockTicks / wall.Seconds()
	}
	if busy0 > 0 {
		rep.MachineCPUPercent = 100 * float64(busy1-busy0) / clockTicks / wall.Seconds()
	}
	if cfg.PID > 0 {
		s := &SetupsServerReport{PID: cfg.PID, RSSBeforeKB: base1.rss, RSSAfterKB: end.rss,
			GoroutinesBefore: base1.goroutines, GoroutinesAfter: end.goroutines}
		baseS := base1.at.Sub(base0.at).Seconds()
		userRate := float64(base1.user-base0.user) / clockTicks / baseS
		sysRate := float64(base1.sys-base0.sys) / clockTicks / baseS
		s.BaselineCPUPercent = 100 * (userRate + sysRate)
		s.CPUPercent = 100 * float64(during.user+during.sys-base1.user-base1.sys) / clockTicks / wall.Seconds()
		span := end.at.Sub(base1.at).Seconds()
		user := float64(end.user-base1.user)/clockTicks - userRate*span
		sys := float64(end.sys-base1.sys)/clockTicks - sysRate*span
		if rep.Completed > 0 {
			n := float64(rep.Completed)
			s.UserMsPerSetup, s.SystemMsPerSetup = 1e3*user/n, 1e3*sys/n
			s.CPUMsPerSetup = s.UserMsPerSetup + s.SystemMsPerSetup
			if s.CPUMsPerSetup > 0 {
				s.SetupsPerCoreS = 1e3 / s.CPUMsPerSetup
			}
			if base0.alloc > 0 && end.alloc > 0 {
				rate := (base1.alloc - base0.alloc) / baseS
				s.AllocKBPerSetup = (end.alloc - base1.alloc - rate*span) / 1024 / n
			}
		}
		rep.Server = s
		rep.OtherCPUPercent = max(rep.MachineCPUPercent-rep.ClientCPUPercent-s.CPUPercent, 0)
		rep.Notes = append(rep.Notes, fmt.Sprintf("CPU time is counted in ticks of %d ms: ±%.2f ms per setup over this run, and the baseline's noise on top",
			1000/clockTicks, 1e3/clockTicks/max(float64(rep.Completed), 1)))
	}
	if busy := rep.MachineCPUPercent; busy > 85*float64(runtime.NumCPU()) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the machine was saturated (%.0f %% of %d cores busy, the clients %.0f %%): the rate is the machine's limit, CPU per setup is still the server's",
			busy, runtime.NumCPU(), rep.ClientCPUPercent))
	}
	if err := r.ended(); err != nil {
		return rep, err
	}
	if rep.Completed == 0 {
		return rep, errors.New("no session completed")
	}
	return rep, nil
}

// runSetups runs the sessions with cfg.Concurrency workers until
// cfg.Sessions have started or cfg.MaxTime has passed.
func (r *runner) runSetups(ctx context.Context, cfg SetupsConfig) []setupResult {
	results := make([]setupResult, cfg.Sessions)
	stopAt := time.Now().Add(cfg.MaxTime)
	var next, done, failed atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range min(cfg.Concurrency, cfg.Sessions) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(results) || ctx.Err() != nil || r.ended() != nil || time.Now().After(stopAt) {
					return
				}
				results[i] = r.setupOne(ctx)
				if results[i].err != nil {
					failed.Add(1)
				}
				d := done.Add(1)
				r.pr.bar("sessions", float64(d), float64(len(results)),
					fmt.Sprintf("%d/%d, %d failed, %.1f/s", d, len(results), failed.Load(), float64(d)/time.Since(start).Seconds()))
			}
		})
	}
	wg.Wait()
	r.pr.done()
	return results
}

// setupOne opens one WHEP session, waits for its first RTP packet and
// closes it (DELETE).
func (r *runner) setupOne(ctx context.Context) setupResult {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	res := setupResult{ran: true}
	var post, firstAt atomic.Int64
	got := make(chan struct{})
	var once sync.Once
	opts := client.ViewOptions{
		HTTPClient: &http.Client{Transport: &postClock{rt: r.transport, at: &post, now: r.log.now}},
		Token:      r.cfg.Token,
		CountOnly:  true,
		OnRTP: func(webrtc.RTPCodecType, *rtp.Packet) {
			once.Do(func() { firstAt.Store(r.log.now()); close(got) })
		},
	}
	v, err := client.View(ctx, streamURL(r.cfg.WHEP, 0, 1), opts)
	if err != nil {
		res.err = err
		return res
	}
	res.setup = time.Duration(r.log.now() - post.Load())
	select {
	case <-got:
		res.first = time.Duration(firstAt.Load() - post.Load())
	case <-v.Done():
		res.err = errors.New("the session ended before its first media packet")
	case <-ctx.Done():
		res.err = fmt.Errorf("no media packet within %v of the POST", r.cfg.Timeout)
	}
	t := r.log.now()
	if err := v.Close(); err != nil && res.err == nil {
		res.err = fmt.Errorf("close: %w", err)
	}
	res.teardown = time.Duration(r.log.now() - t)
	return res
}

// WriteTable writes the report as an aligned, readable table.
func (r *SetupsReport) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("target", "%s → %s", r.WHIP, r.WHEP)
	row("media", "%s", r.Media)
	row("sessions", "%d of %d completed, %d failed, %d at a time, in %.1f s: %.1f setups/s", r.Completed, r.Requested, r.Failed, r.Concurrency, r.WallS, r.SetupsPerS)
	for _, e := range sortedErrors(r.Errors) {
		row("  error", "%s", e)
	}
	row("setup p50/p99/max", "%s (POST → connected)", r.Setup)
	row("first packet p50/p99/max", "%s (POST → first RTP packet)", r.FirstPacket)
	row("teardown p50/p99/max", "%s (DELETE and close)", r.Teardown)
	row("client CPU", "%.1f %% of a core (this process)", r.ClientCPUPercent)
	row("machine CPU", "%.1f %% of a core busy in all (%d cores; %.0f %% not the client's or the server's, %.0f %% of it ksoftirqd)",
		r.MachineCPUPercent, runtime.NumCPU(), r.OtherCPUPercent, r.SoftirqCPUPercent)
	if s := r.Server; s != nil {
		row("server CPU per setup", "%.2f ms (user %.2f, kernel %.2f), less the baseline of %.1f %% of a core (pid %d)",
			s.CPUMsPerSetup, s.UserMsPerSetup, s.SystemMsPerSetup, s.BaselineCPUPercent, s.PID)
		row("setups per core-second", "%.0f", s.SetupsPerCoreS)
		row("server CPU", "%.1f %% of a core during the sessions", s.CPUPercent)
		row("server RSS", "%d KiB before the first session → %d KiB after the last closed", s.RSSBeforeKB, s.RSSAfterKB)
		if s.AllocKBPerSetup != 0 {
			row("server allocation", "%.0f KiB per setup, less the baseline's rate", s.AllocKBPerSetup)
		}
		if s.GoroutinesBefore > 0 {
			row("server goroutines", "%.0f before → %.0f after", s.GoroutinesBefore, s.GoroutinesAfter)
		}
	}
	for _, n := range r.Notes {
		row("note", "%s", n)
	}
	return tw.Flush()
}
