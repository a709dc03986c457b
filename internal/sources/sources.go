// Package sources owns the pulled streams (cameras, other RTSP servers):
// one Supervisor starts each configured source's pull, all the time or
// on demand, restarts it with back-off when it fails, stops an on-demand
// pull once its last reader has left, and reports each source's state.
// The protocol is not its business: a Pull function (the RTSP edge in
// client mode) plays one source into the hub until it fails or its
// context ends.
package sources

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// ErrInvalid is a source the caller may not add (a bad stream name, URL
// or setting); the HTTP edge answers 400 with its message.
var ErrInvalid = errors.New("invalid source")

// Back-off between attempts: 1 s after a failure, doubling to 30 s; a
// pull that connected starts again at 1 s when it is lost.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// DefaultCloseAfter is how long an on-demand pull outlives its last
// reader when the source does not say.
const DefaultCloseAfter = 10 * time.Second

// Source is one pulled stream.
type Source struct {
	Stream    string
	URL       string // credentials in it; never logged or shown as such
	OnDemand  bool
	Transport string // auto, tcp or udp, passed to Pull as it is
	// CloseAfter stops an on-demand pull this long after its last reader
	// left; DefaultCloseAfter if 0.
	CloseAfter time.Duration
}

// PullFunc plays one source into the hub until ctx ends (it returns nil)
// or the connection fails or is refused (it returns why). It calls
// connected once media may flow, with the transport in use, and switched
// when the transport changes while playing.
type PullFunc func(ctx context.Context, s Source, connected, switched func(transport string)) error

// Config is what a Supervisor is started with.
type Config struct {
	Sources []Source
	Pull    PullFunc
	// Readers tells how many readers a stream has now (viewers with a
	// cursor: WHEP, RTSP); nil counts none. Readers that hold no cursor
	// (LL-HLS players) keep an on-demand pull going by calling Demand
	// with each request.
	Readers func(stream string) int
	Log     *slog.Logger
}

// Supervisor owns every pull: one goroutine per source, which Close
// waits for. Apply changes the set of sources while it runs.
type Supervisor struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	applyMu sync.Mutex // one Apply, Put or Remove at a time

	mu     sync.Mutex
	pulls  map[string]*pull // by stream
	closed bool
}

// Diff is what an Apply changed, by stream name.
type Diff struct {
	Started   []string `json:"started,omitempty"`
	Stopped   []string `json:"stopped,omitempty"`
	Restarted []string `json:"restarted,omitempty"`
}

// Empty says that nothing changed.
func (d Diff) Empty() bool { return len(d.Started)+len(d.Stopped)+len(d.Restarted) == 0 }

// New starts the pulls of the always-on sources; on-demand ones wait
// for Demand.
func New(cfg Config) *Supervisor {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Readers == nil {
		cfg.Readers = func(string) int { return 0 }
	}
	s := &Supervisor{cfg: cfg, log: cfg.Log.With("edge", "source"), pulls: make(map[string]*pull, len(cfg.Sources))}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.Apply(cfg.Sources)
	return s
}

// normal is src with its defaults filled in, as it is compared and run.
func normal(src Source) Source {
	if src.CloseAfter <= 0 {
		src.CloseAfter = DefaultCloseAfter
	}
	return src
}

// Apply makes the running sources those of list (one per stream, which
// the caller has validated): new ones start, those not in list stop,
// changed ones restart, and unchanged ones are not touched. It returns
// once the stopped pulls have ended their streams.
func (s *Supervisor) Apply(list []Source) Diff {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	return s.apply(list)
}

// apply is Apply, with applyMu held.
func (s *Supervisor) apply(list []Source) Diff {
	want := make(map[string]Source, len(list))
	for _, src := range list {
		want[src.Stream] = normal(src)
	}
	var d Diff
	var ending []*pull
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return d
	}
	for name, p := range s.pulls {
		src, keep := want[name]
		switch {
		case !keep:
			d.Stopped = append(d.Stopped, name)
		case src != p.src:
			d.Restarted = append(d.Restarted, name)
		default:
			continue
		}
		delete(s.pulls, name)
		p.cancel()
		ending = append(ending, p)
	}
	for name, src := range want {
		if _, running := s.pulls[name]; running {
			continue
		}
		if !slices.Contains(d.Restarted, name) {
			d.Started = append(d.Started, name)
		}
		var prev *pull
		for _, e := range ending {
			if e.src.Stream == name {
				prev = e
			}
		}
		p := newPull(s, src, prev)
		s.pulls[name] = p
		s.wg.Add(1)
		go p.run()
	}
	s.mu.Unlock()
	for _, p := range ending {
		<-p.done
	}
	sort.Strings(d.Started)
	sort.Strings(d.Stopped)
	sort.Strings(d.Restarted)
	if !d.Empty() {
		s.log.Info("sources changed", "started", d.Started, "stopped", d.Stopped, "restarted", d.Restarted)
	}
	return d
}

// List returns the running sources, by stream name.
func (s *Supervisor) List() []Source {
	s.mu.Lock()
	out := make([]Source, 0, len(s.pulls))
	for _, p := range s.pulls {
		out = append(out, p.src)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Put adds the source, or replaces the one of its stream (restarting it
// if it changed); it reports whether the stream had no source before.
func (s *Supervisor) Put(src Source) (created bool) {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	list := s.List()
	created = true
	for i, cur := range list {
		if cur.Stream == src.Stream {
			list[i], created = src, false
		}
	}
	if created {
		list = append(list, src)
	}
	s.apply(list)
	return created
}

// Remove stops the named stream's source; it reports whether there was
// one.
func (s *Supervisor) Remove(stream string) bool {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	list := s.List()
	n := len(list)
	list = slices.DeleteFunc(list, func(src Source) bool { return src.Stream == stream })
	if len(list) == n {
		return false
	}
	s.apply(list)
	return true
}

// lookup is the named stream's pull, nil if it has none.
func (s *Supervisor) lookup(name string) *pull {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pulls[name]
}

// Demand is called by a reader of the named stream (a WHEP offer, an
// LL-HLS request, an RTSP DESCRIBE) before it looks the stream up: an
// on-demand source that is not pulled starts, and one that is keeps
// going. It reports whether the stream is a source's, which is worth
// waiting for (up to the ready timeout) when it is not published yet.
func (s *Supervisor) Demand(name string) bool {
	p := s.lookup(name)
	if p == nil {
		return false
	}
	p.demand()
	return true
}

// Source returns the state of the named stream's source; ok is false if
// the stream is not a source's.
func (s *Supervisor) Source(name string) (st State, ok bool) {
	p := s.lookup(name)
	if p == nil {
		return State{}, false
	}
	return p.state(), true
}

// States returns the state of every source, by stream name.
func (s *Supervisor) States() []State {
	s.mu.Lock()
	pulls := make([]*pull, 0, len(s.pulls))
	for _, p := range s.pulls {
		pulls = append(pulls, p)
	}
	s.mu.Unlock()
	out := make([]State, 0, len(pulls))
	for _, p := range pulls {
		out = append(out, p.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Close stops every pull and waits for them; the streams they published
// end.
func (s *Supervisor) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
