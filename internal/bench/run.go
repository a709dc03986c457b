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
	"time"

	"github.com/sluice-media/sluice/internal/client"
)

// Config is one run: a publisher on WHIP, Viewers viewers on WHEP (or
// RTSP readers).
type Config struct {
	WHIP, WHEP string
	// RTSP, when set, is the stream's RTSP URL (rtsp://HOST:PORT/NAME, a
	// template like WHEP's with more than one stream): the viewers are
	// then RTSP readers over TCP (gortsplib's client, interleaved), not
	// WHEP viewers, and WHEP may be empty. They are measured alike:
	// packets, loss, first keyframe and stamps, setup and time to first
	// keyframe from the DESCRIBE.
	RTSP string
	// Token, when set, is sent as a bearer token by the publisher and by
	// every viewer.
	Token string
	// Viewers is how many WHEP viewers to open (1..10000), spread over the
	// streams: viewer i watches stream i mod Streams.
	Viewers int
	// Streams is how many publishers, each on a stream of its own (1..100;
	// 1 when 0). With more than one, stream i's URLs are the WHIP and WHEP
	// URLs with "-i" appended (i from 1), or put where they say "{n}".
	Streams int
	// Batch is how many viewers join at once; the next batch starts when
	// the previous one has connected or failed. 20 when 0.
	Batch int
	// Lead is how long the publisher sends before the first viewer joins,
	// so that the stream exists and holds a keyframe: 2 s when 0.
	Lead time.Duration
	// Warmup runs after the last viewer joined, before measuring.
	Warmup time.Duration
	// Duration is the measuring window (> 0).
	Duration time.Duration
	// Timeout bounds the publisher's and each viewer's connection, retries
	// on 404 and 503 (stream not ready) included: 20 s when 0.
	Timeout time.Duration
	// Media is what the publisher sends.
	Media MediaConfig
	// PID, when > 0, is the server process whose CPU time and RSS are
	// read from /proc (Linux). It must run on this machine.
	PID int
	// GoroutinesURL, when set, is a Prometheus endpoint of the server (for
	// sluice: /metrics) whose go_goroutines gauge is read before the
	// viewers join and after the warm-up: goroutines per viewer session.
	GoroutinesURL string
	// AllocURL, when set, gives the server's bytes allocated so far, for
	// its allocation rate in the window: Prometheus
	// go_memstats_alloc_bytes_total, or a Go pprof heap page
	// (/debug/pprof/heap?debug=1, "# TotalAlloc"). GoroutinesURL when
	// empty.
	AllocURL string
	// Progress receives a progress bar and phase lines; nil for none.
	Progress io.Writer
}

// Limits on Config values.
const (
	MaxViewers  = 10_000
	MaxStreams  = 100
	maxDuration = time.Hour
)

func (c Config) withDefaults() (Config, error) {
	if c.Batch == 0 {
		c.Batch = 20
	}
	if c.Streams == 0 {
		c.Streams = 1
	}
	if c.Lead == 0 {
		c.Lead = 2 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 20 * time.Second
	}
	if c.AllocURL == "" {
		c.AllocURL = c.GoroutinesURL
	}
	switch {
	case c.WHIP == "" || (c.WHEP == "" && c.RTSP == ""):
		return c, errors.New("a WHIP URL and a WHEP or an RTSP URL are needed")
	case c.Viewers < 1 || c.Viewers > MaxViewers:
		return c, fmt.Errorf("viewers %d: want 1..%d", c.Viewers, MaxViewers)
	case c.Streams < 1 || c.Streams > MaxStreams:
		return c, fmt.Errorf("streams %d: want 1..%d", c.Streams, MaxStreams)
	case c.Batch < 1 || c.Batch > 1000:
		return c, fmt.Errorf("batch %d: want 1..1000", c.Batch)
	case c.Duration <= 0 || c.Duration > maxDuration:
		return c, fmt.Errorf("duration %v: want more than 0 and at most %v", c.Duration, maxDuration)
	case c.Warmup < 0 || c.Warmup > maxDuration:
		return c, fmt.Errorf("warmup %v: want 0..%v", c.Warmup, maxDuration)
	case c.Lead < 0 || c.Lead > time.Minute:
		return c, fmt.Errorf("lead %v: want 0..1m", c.Lead)
	case c.Timeout < time.Second || c.Timeout > 5*time.Minute:
		return c, fmt.Errorf("timeout %v: want 1s..5m", c.Timeout)
	}
	return c, nil
}

// MaxRunTime is an upper bound on how long Run takes with this Config, for
// an overall deadline: every phase is bounded.
func (c Config) MaxRunTime() time.Duration {
	c, _ = c.withDefaults()
	batches := time.Duration((c.Viewers + c.Batch - 1) / max(c.Batch, 1))
	const closeBound = 12 * time.Second // client DELETE timeout and PeerConnection close
	return time.Duration(c.Streams)*c.Timeout + c.Lead + batches*(c.Timeout+closeBound) + c.Warmup + c.Duration + closeBound + 30*time.Second
}

// errEnded is returned when the publisher's connection ends during a run.
var errEnded = errors.New("the publisher's connection ended")

// Run publishes, opens the viewers, measures and reports. Every phase is
// bounded by the Config's times; ctx can end it sooner. With no viewer
// connected it returns the report and an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := prepareMedia(cfg.Media)
	if err != nil {
		return nil, err
	}
	mc := cfg.Media.withDefaults()
	pr := newProgress(cfg.Progress)
	defer pr.done()
	rep := &Report{
		Date: time.Now().UTC().Truncate(time.Second),
		WHIP: streamURL(cfg.WHIP, 0, 1),
		WHEP: streamURL(cfg.WHEP, 0, 1),
		RTSP: streamURL(cfg.RTSP, 0, 1),
		Media: MediaReport{
			Source: m.desc, Width: m.width, Height: m.height, FPS: m.fps,
			TargetVideoKbps: float64(mc.VideoBitrate) / 1000,
		},
		Viewers: ViewerReport{Requested: cfg.Viewers},
	}
	r := &runner{cfg: cfg, pr: pr, log: newSendLog(1 << 14), measuring: &atomic.Bool{},
		transport: &http.Transport{DisableKeepAlives: true}}
	r.logs = []*sendLog{r.log}
	for range cfg.Streams - 1 {
		r.logs = append(r.logs, &sendLog{base: r.log.base, idx: make([]atomic.Uint64, 1<<12), at: make([]atomic.Int64, 1<<12)})
	}
	defer r.transport.CloseIdleConnections()

	var rssNoStream int64
	if cfg.PID > 0 {
		if rssNoStream, err = rssKB(cfg.PID); err != nil {
			return nil, err
		}
	}
	pr.say("publishing %d stream(s) to %s (%s)", cfg.Streams, cfg.WHIP, m.desc)
	pubs, err := r.publish(ctx, m)
	defer r.closePublishers(pubs)
	if err != nil {
		return nil, err
	}
	r.ended = func() error {
		for _, p := range pubs {
			if err := p.ended(); err != nil {
				return err
			}
		}
		return nil
	}
	if err := r.wait(ctx, "lead", cfg.Lead, nil); err != nil {
		return nil, err
	}

	var goBefore float64
	if cfg.GoroutinesURL != "" {
		if goBefore, err = scrapeGauge(ctx, cfg.GoroutinesURL, "go_goroutines"); err != nil {
			return nil, err
		}
	}
	var rssBefore int64
	var joinCPU0, joinCPU1 uint64
	if cfg.PID > 0 {
		if rssBefore, err = rssKB(cfg.PID); err != nil {
			return nil, err
		}
		rep.Streams.RSSPerPublisherKB = float64(rssBefore-rssNoStream) / float64(len(pubs))
		joinCPU0, _ = cpuTicks(cfg.PID)
	}
	viewers := r.connect(ctx, rep)
	if cfg.PID > 0 {
		joinCPU1, _ = cpuTicks(cfg.PID)
	}
	defer r.closeAll(viewers)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err := r.ended(); err != nil {
		return nil, err
	}
	if rep.Viewers.Connected == 0 {
		return rep, errors.New("no viewer connected")
	}
	pr.say("%d of %d viewers connected", rep.Viewers.Connected, cfg.Viewers)

	warm0 := time.Now()
	if err := r.wait(ctx, "warm-up", cfg.Warmup, viewers); err != nil {
		return nil, err
	}
	rep.WarmupS = time.Since(warm0).Seconds()
	var goAfter, alloc0 float64
	if cfg.GoroutinesURL != "" {
		if goAfter, err = scrapeGauge(ctx, cfg.GoroutinesURL, "go_goroutines"); err != nil {
			return nil, err
		}
	}
	if cfg.AllocURL != "" {
		alloc0, _ = scrapeAllocated(ctx, cfg.AllocURL)
	}
	var rssAfter int64
	var user0, sys0 uint64
	if cfg.PID > 0 {
		if rssAfter, err = rssKB(cfg.PID); err != nil {
			return nil, err
		}
		rep.Streams.RSSPerStreamKB = float64(rssAfter-rssNoStream) / float64(len(pubs))
		if user0, sys0, err = cpuSplit(cfg.PID); err != nil {
			return nil, err
		}
	}
	self0, _ := cpuTicks(os.Getpid())
	busy0, _, _ := machineTicks()
	softirqPIDs := softirqThreads()
	soft0 := ticksOf(softirqPIDs)
	drops0, _ := udpRcvbufErrors()
	snap0 := r.snapshot(viewers)
	sent0 := sentOf(pubs)
	t0 := time.Now()
	r.measuring.Store(true)

	if err := r.wait(ctx, "measuring", cfg.Duration, viewers); err != nil {
		return nil, err
	}

	r.measuring.Store(false)
	wall := time.Since(t0)
	snap1 := r.snapshot(viewers)
	sent1 := sentOf(pubs)
	if cfg.AllocURL != "" {
		if alloc1, err := scrapeAllocated(ctx, cfg.AllocURL); err == nil && alloc0 > 0 {
			rep.AllocBytesPerS = (alloc1 - alloc0) / wall.Seconds()
		}
	}
	var user1, sys1 uint64
	if cfg.PID > 0 {
		if user1, sys1, err = cpuSplit(cfg.PID); err != nil {
			return nil, err
		}
	}
	rep.MeasureS = wall.Seconds()
	if self1, err := cpuTicks(os.Getpid()); err == nil && self0 > 0 {
		rep.ClientCPUPercent = 100 * float64(self1-self0) / clockTicks / wall.Seconds()
	}
	if busy1, _, err := machineTicks(); err == nil && busy0 > 0 {
		rep.MachineCPUPercent = 100 * float64(busy1-busy0) / clockTicks / wall.Seconds()
	}
	rep.SoftirqCPUPercent = 100 * float64(ticksOf(softirqPIDs)-soft0) / clockTicks / wall.Seconds()
	if drops1, err := udpRcvbufErrors(); err == nil && drops1 >= drops0 {
		rep.UDPRcvbufErrors = drops1 - drops0
	}

	var ingested uint64
	per := make([]StreamReport, len(pubs))
	for i := range pubs {
		d := sent1[i].sub(sent0[i])
		ingested += d.packets
		rep.Media.SentVideoKbps += float64(d.videoBytes) * 8 / 1000 / wall.Seconds() / float64(len(pubs))
		per[i] = StreamReport{WHIP: pubs[i].url, SentPacketsPerS: float64(d.packets) / wall.Seconds()}
	}
	// Per stream: what each publisher sent, what its viewers got.
	sent := float64(ingested) / float64(len(pubs))
	rep.Media.SentPacketsPerS = sent / wall.Seconds()
	rep.Streams.Count = len(pubs)
	rep.Streams.IngestedPacketsPerS = float64(ingested) / wall.Seconds()
	var delivered, bytes uint64
	var latency, setup, ttff []time.Duration
	perExpected, perLost := make([]int64, len(pubs)), make([]int64, len(pubs))
	for i, v := range viewers {
		p := v.probe
		delivered += snap1[i].packets - snap0[i].packets
		ps := &per[v.stream]
		ps.Viewers++
		ps.DeliveredPacketsPerS += float64(snap1[i].packets-snap0[i].packets) / wall.Seconds()
		bytes += snap1[i].bytes - snap0[i].bytes
		e, l := lost(snap0[i], snap1[i])
		rep.Delivery.Expected += e
		rep.Delivery.Lost += l
		perExpected[v.stream] += e
		perLost[v.stream] += l
		select {
		case <-v.Done():
			rep.Viewers.EndedEarly++
		default:
		}
		setup = append(setup, v.setup)
		if k := p.firstKey.Load(); k != 0 {
			ttff = append(ttff, time.Duration(k-p.postAt.Load()))
		}
		p.mu.Lock()
		latency = append(latency, p.latency...)
		p.mu.Unlock()
	}
	for i := range per {
		if perExpected[i] > 0 {
			per[i].LossPercent = 100 * float64(max(perLost[i], 0)) / float64(perExpected[i])
		}
	}
	if len(pubs) > 1 {
		rep.Streams.PerStream = per
	}
	rep.Delivery.Lost = max(rep.Delivery.Lost, 0)
	rep.Delivery.PacketsPerS = float64(delivered) / wall.Seconds()
	rep.Delivery.Mbps = float64(bytes) * 8 / 1e6 / wall.Seconds()
	if sent > 0 {
		rep.Delivery.Ratio = float64(delivered) / (sent * float64(len(viewers)))
	}
	if rep.Delivery.Expected > 0 {
		rep.Delivery.LossPercent = 100 * float64(rep.Delivery.Lost) / float64(rep.Delivery.Expected)
	}
	rep.Delivery.Stamps = len(latency)
	rep.Viewers.WithKeyframe = len(ttff)
	rep.Setup, rep.TTFF, rep.Latency = percentiles(setup), percentiles(ttff), percentiles(latency)
	if len(latency) == 0 {
		rep.Notes = append(rep.Notes, "no stamp SEI reached a viewer in the window: latency not measured")
	}
	if cfg.GoroutinesURL != "" && len(viewers) > 0 {
		rep.GoroutinesPerViewer = (goAfter - goBefore) / float64(len(viewers))
	}
	if cfg.PID > 0 {
		user, system := float64(user1-user0)/clockTicks, float64(sys1-sys0)/clockTicks
		cpu := user + system
		s := &ServerReport{PID: cfg.PID, CPUPercent: 100 * cpu / wall.Seconds(),
			RSSBeforeKB: rssBefore, RSSAfterKB: rssAfter,
			RSSPerViewerKB: float64(rssAfter-rssBefore) / float64(len(viewers))}
		if ingested > 0 {
			s.CPUUsPerIngestedPacket = cpu * 1e6 / float64(ingested)
		}
		if delivered > 0 {
			s.CPUUsPerPacket = cpu * 1e6 / float64(delivered)
			s.UserUsPerPacket = user * 1e6 / float64(delivered)
			s.SystemUsPerPacket = system * 1e6 / float64(delivered)
		}
		if joinCPU0 > 0 && joinCPU1 >= joinCPU0 {
			s.CPUMsPerSetup = float64(joinCPU1-joinCPU0) / clockTicks * 1e3 / float64(len(viewers))
		}
		rep.Server = s
		rep.Notes = append(rep.Notes, fmt.Sprintf("CPU time is counted in ticks of %d ms: ±%.2f µs/packet over this window", 1000/clockTicks, 1e6/clockTicks/max(float64(delivered), 1)))
	}
	rep.OtherCPUPercent = max(rep.MachineCPUPercent-rep.ClientCPUPercent-serverCPU(rep), 0)
	if busy := max(rep.MachineCPUPercent, rep.ClientCPUPercent+serverCPU(rep)); busy > 85*float64(runtime.NumCPU()) {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the machine was saturated (%.0f %% of %d cores busy: clients %.0f %%, server %.0f %%, the rest kernel or other programs); the numbers show the machine's limit more than the server's",
			busy, runtime.NumCPU(), rep.ClientCPUPercent, serverCPU(rep)))
	}
	if err := r.ended(); err != nil {
		return rep, err
	}
	return rep, nil
}

func serverCPU(r *Report) float64 {
	if r.Server == nil {
		return 0
	}
	return r.Server.CPUPercent
}

// runner holds what the phases of a Run share.
type runner struct {
	cfg       Config
	pr        *progress
	log       *sendLog   // the clock, and stream 0's stamps
	logs      []*sendLog // each stream's stamps
	measuring *atomic.Bool
	transport *http.Transport
	ended     func() error // non-nil once the publisher is gone
}

// session is a viewer's connection: a WHEP session or an RTSP reader.
type session interface {
	Done() <-chan struct{}
	Close() error
}

// viewer is a connected viewer and its measurements.
type viewer struct {
	session
	probe  *probe
	setup  time.Duration
	stream int // index of the stream it watches
}

// postClock notes when a viewer's WHEP POST goes out: now() into at.
type postClock struct {
	rt  http.RoundTripper
	at  *atomic.Int64
	now func() int64
}

func (c *postClock) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		c.at.Store(c.now())
	}
	return c.rt.RoundTrip(req)
}

// connect opens the viewers in batches and counts them in rep.
func (r *runner) connect(ctx context.Context, rep *Report) []*viewer {
	n := r.cfg.Viewers
	var viewers []*viewer
	errs := map[string]int{}
	start := time.Now()
	for first := 0; first < n && ctx.Err() == nil && r.ended() == nil; first += r.cfg.Batch {
		size := min(r.cfg.Batch, n-first)
		got := make([]*viewer, size)
		fails := make([]error, size)
		var wg sync.WaitGroup
		for i := range size {
			wg.Go(func() { got[i], fails[i] = r.connectOne(ctx, (first+i)%len(r.logs)) })
		}
		wg.Wait()
		for i := range size {
			if got[i] != nil {
				viewers = append(viewers, got[i])
				continue
			}
			rep.Viewers.Failed++
			k := shortError(fails[i])
			if _, ok := errs[k]; ok || len(errs) < 10 {
				errs[k]++
			}
		}
		r.pr.bar("viewers", float64(first+size), float64(n),
			fmt.Sprintf("%d/%d connected, %d failed, %.1f s", len(viewers), n, rep.Viewers.Failed, time.Since(start).Seconds()))
	}
	rep.Viewers.Connected = len(viewers)
	if d := time.Since(start).Seconds(); d > 0 {
		rep.Viewers.SetupsPerS = float64(len(viewers)) / d
	}
	if len(errs) > 0 {
		rep.Viewers.Errors = errs
	}
	return viewers
}

// retryStatuses are answers that mean "the stream is not ready yet".
var retryStatuses = map[int]bool{http.StatusNotFound: true, http.StatusServiceUnavailable: true}

func (r *runner) connectOne(ctx context.Context, stream int) (*viewer, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	p := &probe{log: r.logs[stream], measuring: r.measuring}
	if r.cfg.RTSP != "" {
		return r.connectRTSP(ctx, stream, p)
	}
	opts := client.ViewOptions{
		HTTPClient: &http.Client{Transport: &postClock{rt: r.transport, at: &p.postAt, now: p.log.now}},
		Token:      r.cfg.Token,
		CountOnly:  true,
		OnRTP:      p.onRTP,
	}
	for {
		v, err := client.View(ctx, streamURL(r.cfg.WHEP, stream, r.cfg.Streams), opts)
		if err == nil {
			return &viewer{session: v, probe: p, setup: time.Duration(r.log.now() - p.postAt.Load()), stream: stream}, nil
		}
		if !retryStatuses[client.StatusOf(err)] {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// connectRTSP opens one RTSP reader, retrying while the stream is not
// there yet (404, or 503 from a server waiting for its publisher).
func (r *runner) connectRTSP(ctx context.Context, stream int, p *probe) (*viewer, error) {
	for {
		rd, err := readRTSP(ctx, streamURL(r.cfg.RTSP, stream, r.cfg.Streams), r.cfg.Token, r.cfg.Timeout, p)
		if err == nil {
			return &viewer{session: rd, probe: p, setup: time.Duration(r.log.now() - p.postAt.Load()), stream: stream}, nil
		}
		if !retryStatuses[rtspStatus(err)] {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// wait lets d pass with a progress bar; it stops early if ctx ends or the
// publisher is gone.
func (r *runner) wait(ctx context.Context, label string, d time.Duration, viewers []*viewer) error {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	var last uint64
	lastAt := start
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			r.pr.bar(label, d.Seconds(), d.Seconds(), fmt.Sprintf("%.1f s", d.Seconds()))
			return nil
		case now := <-tick.C:
			if err := r.ended(); err != nil {
				return err
			}
			suffix := fmt.Sprintf("%.1f/%.1f s", now.Sub(start).Seconds(), d.Seconds())
			if len(viewers) > 0 {
				var pkts uint64
				for _, v := range viewers {
					pkts += v.probe.packets.Load()
				}
				if last > 0 {
					suffix += fmt.Sprintf(", %.0f packets/s delivered", float64(pkts-last)/now.Sub(lastAt).Seconds())
				}
				last, lastAt = pkts, now
			}
			r.pr.bar(label, now.Sub(start).Seconds(), d.Seconds(), suffix)
		}
	}
}

func (r *runner) snapshot(viewers []*viewer) []counters {
	out := make([]counters, len(viewers))
	for i, v := range viewers {
		out[i] = v.probe.snapshot()
	}
	return out
}

// closeAll closes the viewers, a batch at a time.
func (r *runner) closeAll(viewers []*viewer) {
	for first := 0; first < len(viewers); first += r.cfg.Batch {
		var wg sync.WaitGroup
		for _, v := range viewers[first:min(first+r.cfg.Batch, len(viewers))] {
			wg.Go(func() { _ = v.Close() })
		}
		wg.Wait()
		r.pr.bar("closing", float64(min(first+r.cfg.Batch, len(viewers))), float64(len(viewers)), "")
	}
	r.pr.done()
}
