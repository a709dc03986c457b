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
	"log/slog"
	"sort"
	"sync"
	"time"
)

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
// waits for.
type Supervisor struct {
	cfg    Config
	log    *slog.Logger
	pulls  map[string]*pull // by stream; not changed after New
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

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
	for _, src := range cfg.Sources {
		if src.CloseAfter <= 0 {
			src.CloseAfter = DefaultCloseAfter
		}
		p := newPull(s, src)
		s.pulls[src.Stream] = p
		s.wg.Add(1)
		go p.run()
	}
	return s
}

// Demand is called by a reader of the named stream (a WHEP offer, an
// LL-HLS request, an RTSP DESCRIBE) before it looks the stream up: an
// on-demand source that is not pulled starts, and one that is keeps
// going. It reports whether the stream is a source's, which is worth
// waiting for (up to the ready timeout) when it is not published yet.
func (s *Supervisor) Demand(name string) bool {
	p := s.pulls[name]
	if p == nil {
		return false
	}
	p.demand()
	return true
}

// Source returns the state of the named stream's source; ok is false if
// the stream is not a source's.
func (s *Supervisor) Source(name string) (st State, ok bool) {
	p := s.pulls[name]
	if p == nil {
		return State{}, false
	}
	return p.state(), true
}

// States returns the state of every source, by stream name.
func (s *Supervisor) States() []State {
	out := make([]State, 0, len(s.pulls))
	for _, p := range s.pulls {
		out = append(out, p.state())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stream < out[j].Stream })
	return out
}

// Close stops every pull and waits for them; the streams they published
// end.
func (s *Supervisor) Close() {
	s.cancel()
	s.wg.Wait()
}
