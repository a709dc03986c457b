package sources

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// States of a source (State.State).
const (
	StateIdle       = "idle"       // on demand, nobody reading: not pulled
	StateConnecting = "connecting" // an attempt is under way
	StateConnected  = "connected"  // media flows into the hub
	StateError      = "error"      // the last attempt failed or the camera was lost; waiting RetryIn
)

// State is what the API shows of a source.
type State struct {
	Stream    string `json:"-"`
	URL       string `json:"url"` // credentials redacted
	OnDemand  bool   `json:"on_demand"`
	Transport string `json:"transport"` // as configured: auto, tcp or udp
	State     string `json:"state"`     // idle, connecting, connected or error
	// Using is the transport of the connection while connected: UDP or
	// TCP.
	Using string `json:"using,omitempty"`
	// LastError is why the last attempt failed or the connection was
	// lost (credentials redacted); it stays after a reconnect.
	LastError string `json:"last_error,omitempty"`
	// Reconnects counts attempts after a failure or a loss since sluice
	// started (the first attempt of each on-demand pull is not one).
	Reconnects uint64 `json:"reconnects"`
	// RetryIn is the back-off before the next attempt, in state error.
	RetryIn float64   `json:"retry_in_seconds,omitempty"`
	Since   time.Time `json:"since"` // when the source entered its state
}

// pull is one source's goroutine and state.
type pull struct {
	s      *Supervisor
	src    Source
	log    *slog.Logger
	wake   chan struct{} // Demand of an idle on-demand source
	ctx    context.Context
	cancel context.CancelFunc // the source was removed or changed, or sluice closes
	done   chan struct{}      // closed when run has returned
	prev   *pull              // the stream's previous pull, still stopping: run waits for it

	lastDemand atomic.Int64 // unix nanos of the newest Demand

	mu sync.Mutex
	st State
}

func newPull(s *Supervisor, src Source, prev *pull) *pull {
	transport := src.Transport
	if transport == "" {
		transport = "auto"
	}
	ctx, cancel := context.WithCancel(s.ctx)
	p := &pull{s: s, src: src, wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{}), prev: prev,
		st: State{Stream: src.Stream, URL: Redact(src.URL), OnDemand: src.OnDemand, Transport: transport,
			State: StateIdle, Since: time.Now().UTC()}}
	p.log = s.log.With("stream", src.Stream, "url", p.st.URL)
	return p
}

func (p *pull) demand() {
	p.lastDemand.Store(time.Now().UnixNano())
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *pull) state() State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.st
}

func (p *pull) set(f func(st *State)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	prev := p.st.State
	f(&p.st)
	if p.st.State != prev {
		p.st.Since = time.Now().UTC()
	}
}

// run pulls the source while sluice runs (always-on) or while it is
// read (on demand).
func (p *pull) run() {
	defer p.s.wg.Done()
	defer close(p.done)
	defer p.cancel()
	ctx := p.ctx
	if p.prev != nil {
		// The old pull of a changed source ends its stream as it stops:
		// this one publishes anew once it has.
		select {
		case <-p.prev.done:
			p.prev = nil
		case <-ctx.Done():
			return
		}
	}
	for {
		if p.src.OnDemand {
			p.set(func(st *State) { st.State, st.Using, st.RetryIn = StateIdle, "", 0 })
			select {
			case <-p.wake:
			case <-ctx.Done():
				return
			}
			p.log.Info("source demanded: pulling")
		}
		p.session(ctx)
		if ctx.Err() != nil || !p.src.OnDemand {
			return
		}
	}
}

// session pulls, again and again with back-off, until ctx ends or (on
// demand) nobody has read the stream for CloseAfter.
func (p *pull) session(parent context.Context) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	if p.src.OnDemand {
		stop := p.watchIdle(cancel)
		defer stop()
	}
	backoff := minBackoff
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.set(func(st *State) { st.Reconnects++ })
		}
		p.set(func(st *State) { st.State, st.Using, st.RetryIn = StateConnecting, "", 0 })
		connected := false
		err := p.s.cfg.Pull(ctx, p.src, func(transport string) {
			connected = true
			p.set(func(st *State) { st.State, st.Using = StateConnected, transport })
			p.log.Info("source connected", "transport", transport, "reconnects", p.state().Reconnects)
		}, func(transport string) {
			p.set(func(st *State) { st.Using = transport })
			p.log.Info("source switched transport (UDP refused, or no UDP packet came)", "transport", transport)
		})
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = minBackoff // it worked: a drop is retried soon
		}
		msg := scrub(p.src.URL, err)
		p.set(func(st *State) {
			st.State, st.Using, st.LastError, st.RetryIn = StateError, "", msg, backoff.Seconds()
		})
		if connected {
			p.log.Warn("source lost", "err", msg, "retry_in", backoff)
		} else {
			p.log.Warn("source failed", "err", msg, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// watchIdle cancels an on-demand session once the stream has had no
// reader and no Demand for CloseAfter; it checks a few times within that
// time (readers are counted, not announced). stop ends the watch.
func (p *pull) watchIdle(cancel context.CancelFunc) (stop func()) {
	every := min(max(p.src.CloseAfter/4, 100*time.Millisecond), time.Second)
	var mu sync.Mutex
	stopped := false
	var t *time.Timer
	mu.Lock() // the callback's Reset reads t
	defer mu.Unlock()
	t = time.AfterFunc(every, func() {
		if p.s.cfg.Readers(p.src.Stream) > 0 {
			p.lastDemand.Store(time.Now().UnixNano())
		}
		idle := time.Since(time.Unix(0, p.lastDemand.Load()))
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if idle < p.src.CloseAfter {
			t.Reset(every)
			return
		}
		stopped = true
		p.log.Info("source not read: pull stopped", "idle", idle.Round(time.Millisecond))
		cancel()
	})
	return func() {
		mu.Lock()
		stopped = true
		mu.Unlock()
		t.Stop()
	}
}
