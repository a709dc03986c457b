// Package record records live streams to disk as fragmented MP4 files:
// H264, H265, VP9 or AV1 video as published, AAC (transcoded from Opus) or Opus
// audio, one file per segment, each playable on its own. Rules (from the
// configuration) say which streams are recorded, where, and how long files
// are kept; the JSON API switches recording on and off per stream.
//
// Each recorded stream has one goroutine that reads the stream with its
// own hub cursor (internal/tap) and writes the files, so the disk never
// holds up live media; a write error (a full disk) stops that stream's
// recording with an error log and nothing else.
package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// ErrNoRule means no recording rule matches the stream, so it cannot be
// switched on.
var ErrNoRule = errors.New("no recording rule matches the stream")

// Config configures a Manager.
type Config struct {
	Rules []Rule
	// Taps shares each stream's reading and transcoding with the other
	// outputs (LL-HLS); nil gives the manager a pool of its own.
	Taps *tap.Pool
}

// Status is a stream's recording state, as the API reports it.
type Status struct {
	Stream string `json:"stream"`
	// Rule is the streams pattern of the rule that applies, "" if none.
	Rule string `json:"rule"`
	// Enabled says whether the stream is to be recorded while it is live:
	// its rule (unless manual), or the API's switch.
	Enabled bool `json:"enabled"`
	// Recording says whether a recorder is running for it now, and File
	// which file it writes.
	Recording bool   `json:"recording"`
	File      string `json:"file,omitempty"`
	// Error says why recording stopped, if it failed.
	Error string `json:"error,omitempty"`
}

// Manager starts and stops the recorders of all streams, and applies the
// retention limits.
type Manager struct {
	cfg    Config
	hub    *hub.Hub
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	create func(path string) (sink, error)
	prune  chan struct{} // wakes the janitor when a file was closed
	stats  stats
	// rules are the recording rules and the catalog of their files on
	// disk (for listing and playback); SetRules swaps both at once.
	rules atomic.Pointer[ruleSet]

	mu       sync.Mutex
	switches map[string]bool      // the API's on/off per stream name
	recs     map[string]*recorder // newest recorder per stream name
	open     map[string]bool      // files being written
	closed   bool
}

// New returns a Manager that records the streams of h as the rules say;
// it watches for new streams and prunes old files until Close.
func New(cfg Config, h *hub.Hub, log *slog.Logger) *Manager {
	return newManager(cfg, h, log, func(path string) (sink, error) {
		return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	})
}

func newManager(cfg Config, h *hub.Hub, log *slog.Logger, create func(string) (sink, error)) *Manager {
	if cfg.Taps == nil {
		cfg.Taps = tap.NewPool()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{cfg: cfg, hub: h, log: log, ctx: ctx, cancel: cancel, create: create,
		prune: make(chan struct{}, 1), switches: map[string]bool{}, recs: map[string]*recorder{}, open: map[string]bool{}}
	m.rules.Store(newRuleSet(cfg.Rules))
	m.wg.Add(2)
	go m.watch()
	go m.janitor()
	return m
}

// ruleSet is one generation of the rules, with defaults applied, and the
// catalog of the files they write.
type ruleSet struct {
	rules   []Rule
	catalog *catalog
}

func newRuleSet(in []Rule) *ruleSet {
	rules := make([]Rule, len(in))
	for i, r := range in {
		rules[i] = r.withDefaults()
	}
	return &ruleSet{rules: rules, catalog: newCatalog(rules)}
}

// currentRules are the rules in force.
func (m *Manager) currentRules() []Rule { return m.rules.Load().rules }

// catalogNow is the catalog of the rules in force.
func (m *Manager) catalogNow() *catalog { return m.rules.Load().catalog }

// SetRules replaces the recording rules (a config reload): live streams
// that a rule now matches start recording, those no rule matches any more
// stop (their files are closed properly), and the listing and retention
// follow the new rules. A recorder already running for a stream that
// still matches keeps its rule's settings until the stream's next
// publication.
func (m *Manager) SetRules(rules []Rule) {
	m.rules.Store(newRuleSet(rules))
	for _, st := range m.hub.Streams() {
		m.sync(st)
	}
	select {
	case m.prune <- struct{}{}: // retention by the new rules
	default:
	}
}

// rule returns the first rule that matches a stream.
func (m *Manager) rule(stream string) (Rule, bool) {
	for _, r := range m.currentRules() {
		if r.matches(stream) {
			return r, true
		}
	}
	return Rule{}, false
}

// watch starts recorders for the streams published.
func (m *Manager) watch() {
	defer m.wg.Done()
	for {
		published := m.hub.Published()
		for _, st := range m.hub.Streams() {
			m.sync(st)
		}
		select {
		case <-published:
		case <-m.ctx.Done():
			return
		}
	}
}

// sync starts or stops the recorder of a live stream to match its rule
// and switch. A recorder that failed is not restarted for the same
// publication unless the API switches recording on again.
func (m *Manager) sync(st *hub.Stream) {
	name := st.Name()
	rule, ok := m.rule(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if !ok {
		if rc := m.recs[name]; rc != nil {
			rc.cancel() // its rule was removed by a reload
		}
		return
	}
	want := !rule.Manual
	if on, set := m.switches[name]; set {
		want = on
	}
	rc := m.recs[name]
	same := rc != nil && rc.st == st
	switch {
	case !want:
		if rc != nil {
			rc.cancel()
		}
	case same && !rc.stopped(): // recording
	case same && rc.failed() != nil: // failed for this publication
	default:
		m.start(st, rule)
	}
}

// start runs a recorder; m.mu is held.
func (m *Manager) start(st *hub.Stream, rule Rule) {
	ctx, cancel := context.WithCancel(m.ctx)
	rc := &recorder{m: m, st: st, rule: rule, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log: m.log.With("stream", st.Name())}
	m.recs[st.Name()] = rc
	m.wg.Add(1)
	go rc.run()
}

// SetRecording switches a stream's recording on or off; the switch holds
// for the stream's later publications too, until the server restarts.
// Switching on needs a rule for the stream (ErrNoRule); it also restarts
// a recording that failed. Switching off waits for the file to be closed.
func (m *Manager) SetRecording(stream string, enabled bool) (Status, error) {
	if _, ok := m.rule(stream); !ok && enabled {
		return Status{}, fmt.Errorf("%w: %q", ErrNoRule, stream)
	}
	m.mu.Lock()
	m.switches[stream] = enabled
	rc := m.recs[stream]
	if enabled && rc != nil && rc.failed() != nil && rc.stopped() {
		delete(m.recs, stream) // try again
	}
	m.mu.Unlock()
	if st, err := m.hub.Lookup(stream); err == nil {
		m.sync(st)
	}
	if !enabled && rc != nil {
		select {
		case <-rc.done:
		case <-m.ctx.Done():
		}
	}
	return m.Status(stream), nil
}

// Status reports a stream's recording state.
func (m *Manager) Status(stream string) Status {
	s := Status{Stream: stream}
	rule, ok := m.rule(stream)
	if ok {
		s.Rule, s.Enabled = rule.Streams, !rule.Manual
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if on, set := m.switches[stream]; set && ok {
		s.Enabled = on
	}
	if rc := m.recs[stream]; rc != nil {
		rc.mu.Lock()
		s.File = rc.file
		if rc.err != nil {
			s.Error = rc.err.Error()
		}
		rc.mu.Unlock()
		s.Recording = !rc.stopped() && s.Error == ""
	}
	return s
}

// hold and release track the files being written, which retention
// leaves alone.
func (m *Manager) hold(path string) {
	m.mu.Lock()
	m.open[path] = true
	m.mu.Unlock()
}

func (m *Manager) release(path string) {
	m.mu.Lock()
	delete(m.open, path)
	m.mu.Unlock()
	select {
	case m.prune <- struct{}{}:
	default:
	}
}

// Close stops every recorder (their files are closed properly) and the
// janitor, and waits for them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
}

func (rc *recorder) stopped() bool {
	select {
	case <-rc.done:
		return true
	default:
		return false
	}
}

func (rc *recorder) failed() error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.err
}
