// Package forward pushes live streams to other services (restreaming):
// each rule's targets get every stream whose name matches it, for as long
// as the stream is published, over RTMP, RTMPS or SRT. A target reads the
// stream through the shared tap reader, like LL-HLS, so it never holds up
// the publisher or the viewers; a target that fails is retried with
// back-off.
package forward

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sort"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// Back-off bounds: the first retry after minBackoff, doubling to
// maxBackoff; a push that ran for stableAfter starts again from
// minBackoff.
const (
	minBackoff  = time.Second
	maxBackoff  = 30 * time.Second
	stableAfter = 30 * time.Second
)

// Config configures a Forwarder.
type Config struct {
	Rules []Rule
	Hub   *hub.Hub
	Taps  *tap.Pool
	// DialTimeout bounds a connection to a target (TCP/TLS/RTMP
	// handshake, SRT handshake); WriteTimeout one write to it.
	DialTimeout, WriteTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between attempts; 0 means
	// 1 s and 30 s.
	MinBackoff, MaxBackoff time.Duration
	Log                    *slog.Logger
}

// State is where a target stands.
type State string

// Target states.
const (
	StateConnecting State = "connecting" // dialing, or waiting for the stream's first keyframe
	StateRunning    State = "running"    // sending
	StateRetrying   State = "retrying"   // the last attempt failed; waiting to try again
)

// Target is one target of one stream, for the API.
type Target struct {
	URL      string    `json:"url"` // redacted: scheme, host and first path element
	State    State     `json:"state"`
	Since    time.Time `json:"since"`
	Attempts uint64    `json:"attempts"`
	Error    string    `json:"error,omitempty"` // why the last attempt ended
	Bytes    uint64    `json:"bytes_sent"`
}

// Stats counts the forwarder's work, for the metrics.
type Stats struct {
	Connecting, Running, Retrying int
	Attempts, Failures, Bytes     uint64
}

// Forwarder runs the targets of the streams that match its rules.
type Forwarder struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[*hub.Stream][]*target
	// Totals of targets that ended, so that the counters never go back.
	attempts, failures, bytes uint64
}

// New starts forwarding; with no rules it does nothing.
func New(cfg Config) *Forwarder {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = minBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = maxBackoff
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Taps == nil {
		cfg.Taps = tap.NewPool()
	}
	f := &Forwarder{cfg: cfg, log: cfg.Log.With("part", "forward"), running: map[*hub.Stream][]*target{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if len(cfg.Rules) > 0 {
		f.wg.Add(1)
		go f.watch()
	}
	return f
}

// Close stops every target and waits for them.
func (f *Forwarder) Close() {
	f.cancel()
	f.wg.Wait()
}

// watch starts the targets of every stream published that a rule
// matches.
func (f *Forwarder) watch() {
	defer f.wg.Done()
	for {
		published := f.cfg.Hub.Published()
		for _, st := range f.cfg.Hub.Streams() {
			f.start(st)
		}
		select {
		case <-published:
		case <-f.ctx.Done():
			return
		}
	}
}

// start runs the stream's targets, once per stream.
func (f *Forwarder) start(st *hub.Stream) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.running[st]; ok || f.ctx.Err() != nil {
		return
	}
	var urls []string
	seen := map[string]bool{}
	for _, r := range f.cfg.Rules {
		if !r.matches(st.Name()) {
			continue
		}
		for _, u := range r.To {
			if !seen[u] {
				seen[u] = true
				urls = append(urls, u)
			}
		}
	}
	var ts []*target
	for _, raw := range urls {
		u, err := parseTarget(raw)
		if err != nil {
			continue // Check refused it at load
		}
		ts = append(ts, &target{f: f, st: st, u: u, name: redact(raw), state: StateConnecting, since: time.Now()})
	}
	f.running[st] = ts // an empty list marks the stream as looked at
	for _, t := range ts {
		f.wg.Add(1)
		go t.run()
	}
	if len(ts) == 0 {
		f.wg.Add(1)
		go func() { // forget the stream when it ends
			defer f.wg.Done()
			select {
			case <-st.Done():
			case <-f.ctx.Done():
			}
			f.mu.Lock()
			delete(f.running, st)
			f.mu.Unlock()
		}()
	}
}

// ended forgets a target whose stream ended.
func (f *Forwarder) ended(t *target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ts := f.running[t.st]
	for i, x := range ts {
		if x == t {
			ts = append(ts[:i:i], ts[i+1:]...)
			break
		}
	}
	a, fl, b := t.counts()
	f.attempts, f.failures, f.bytes = f.attempts+a, f.failures+fl, f.bytes+b
	if len(ts) == 0 {
		delete(f.running, t.st)
		return
	}
	f.running[t.st] = ts
}

// Targets returns the state of the stream's targets, in URL order; nil
// when it is not forwarded.
func (f *Forwarder) Targets(stream string) []Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Target
	for st, ts := range f.running {
		if st.Name() != stream {
			continue
		}
		for _, t := range ts {
			out = append(out, t.info())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].URL < out[j].URL })
	return out
}

// Stats returns the counters so far.
func (f *Forwarder) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := Stats{Attempts: f.attempts, Failures: f.failures, Bytes: f.bytes}
	for _, ts := range f.running {
		for _, t := range ts {
			i := t.info()
			switch i.State {
			case StateConnecting:
				s.Connecting++
			case StateRunning:
				s.Running++
			case StateRetrying:
				s.Retrying++
			}
			a, fl, b := t.counts()
			s.Attempts, s.Failures, s.Bytes = s.Attempts+a, s.Failures+fl, s.Bytes+b
		}
	}
	return s
}

// errStopped ends a push whose stream ended or whose forwarder closed.
var errStopped = errors.New("stopped")

// target pushes one stream to one URL, again after each failure, until
// the stream ends.
type target struct {
	f    *Forwarder
	st   *hub.Stream
	u    *url.URL
	name string

	mu       sync.Mutex
	state    State
	since    time.Time
	attempts uint64
	failures uint64
	lastErr  string
	sent     func() uint64 // bytes of the running attempt; nil between attempts
	bytes    uint64        // bytes of the attempts that ended
}

func (t *target) info() Target {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.bytes
	if t.sent != nil {
		b += t.sent()
	}
	return Target{URL: t.name, State: t.state, Since: t.since.UTC(), Attempts: t.attempts, Error: t.lastErr, Bytes: b}
}

func (t *target) counts() (attempts, failures, bytes uint64) {
	i := t.info()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts, t.failures, i.Bytes
}

func (t *target) set(s State) {
	t.mu.Lock()
	if t.state != s {
		t.state, t.since = s, time.Now()
	}
	t.mu.Unlock()
}

// running is called by a push once it sends; sent reports its bytes.
func (t *target) running(sent func() uint64) {
	t.mu.Lock()
	t.sent = sent
	t.mu.Unlock()
	t.set(StateRunning)
	t.f.log.Info("forwarding", "stream", t.st.Name(), "to", t.name)
}

func (t *target) run() {
	defer t.f.wg.Done()
	defer t.f.ended(t)
	ctx, cancel := context.WithCancel(t.f.ctx)
	watched := make(chan struct{})
	defer func() {
		cancel()
		<-watched
	}()
	go func() { // the stream's end stops the push
		defer close(watched)
		select {
		case <-t.st.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := t.f.cfg.MinBackoff
	for {
		t.mu.Lock()
		t.attempts++
		t.mu.Unlock()
		t.set(StateConnecting)
		start := time.Now()
		err := t.push(ctx)
		t.mu.Lock()
		if t.sent != nil {
			t.bytes += t.sent()
			t.sent = nil
		}
		t.mu.Unlock()
		if ctx.Err() != nil || errors.Is(err, hub.ErrEnded) {
			return
		}
		if time.Since(start) >= stableAfter {
			backoff = t.f.cfg.MinBackoff
		}
		t.mu.Lock()
		t.failures++
		t.lastErr = err.Error()
		t.mu.Unlock()
		t.set(StateRetrying)
		t.f.log.Warn("forward failed", "stream", t.st.Name(), "to", t.name, "err", err, "retry_in", backoff)
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return
		}
		backoff = min(2*backoff, t.f.cfg.MaxBackoff)
	}
}

// push makes one attempt: a subscription to the stream, a connection to
// the target, and units sent until either ends.
func (t *target) push(ctx context.Context) error {
	sub, err := t.f.cfg.Taps.Open(ctx, t.st, tap.Options{Audio: tap.AudioAAC})
	if err != nil {
		return err
	}
	defer sub.Close()
	switch t.u.Scheme {
	case "srt":
		return t.pushSRT(ctx, sub)
	default:
		return t.pushRTMP(ctx, sub)
	}
}
