package cluster

import (
	"context"
	"errors"
	"sync"
	"time"
)

// pull feeds one stream into this node's hub for the viewers here: while
// another node owns the stream, through a link (a WHEP session) to that
// node; while this node owns it, not at all. It checks the owner in Redis
// every poll interval and follows it: when the owner dies or the publisher
// moves, the old link detaches from the hub stream (whose reconnect grace
// keeps the viewers) and a link to the new owner reattaches to it, so the
// viewers never renegotiate.
type pull struct {
	c      *Cluster
	stream string
	ctx    context.Context
	cancel context.CancelFunc
	tried  chan struct{} // closed after the first attempt to feed the stream
	done   chan struct{} // closed when run has returned
	prev   *pull         // a pull of the same stream still stopping; run waits for it

	// Guarded by c.mu.
	viewers int
	linger  *time.Timer

	mu      sync.Mutex // guards cur; held while a link attaches to the hub
	cur     *link
	lastErr string // the last dial error logged, to log each one once
	// owner is the node the stream was last fed from here, through a link
	// or by a local publisher, to count owner moves; used by run only.
	owner string
}

func newPull(c *Cluster, stream string, prev *pull) *pull {
	ctx, cancel := context.WithCancel(c.ctx)
	return &pull{c: c, stream: stream, ctx: ctx, cancel: cancel, tried: make(chan struct{}), done: make(chan struct{}), prev: prev}
}

func (p *pull) run() {
	defer close(p.done)
	defer p.c.stopped(p)
	if p.prev != nil {
		// The previous pull ends its hub stream as it stops: wait, so
		// that this one's viewers join the stream it feeds instead.
		select {
		case <-p.prev.done:
			p.prev = nil
		case <-p.ctx.Done():
			close(p.tried)
			return
		}
	}
	defer p.stop()
	first := true
	for {
		p.step()
		if first {
			close(p.tried)
			first = false
		}
		var failed <-chan struct{}
		p.mu.Lock()
		if p.cur != nil {
			failed = p.cur.Failed()
		}
		p.mu.Unlock()
		t := time.NewTimer(p.c.poll)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-failed:
			t.Stop() // look for the owner again at once
		case <-t.C:
		}
	}
}

// step makes the link match the owner Redis names.
func (p *pull) step() {
	ctx, cancel := context.WithTimeout(p.ctx, p.c.cfg.ConnectTimeout)
	defer cancel()
	owner, found, err := p.c.reg.Owner(ctx, p.stream)
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if err != nil {
		// A failure only if nothing feeds the stream: a working link is kept.
		if cur == nil || cur.isFailed() {
			p.c.counts.failRegistry.Add(1)
		}
		p.logOnce("cluster owner lookup failed", err)
		return // keep what works: Redis may come back
	}
	if cur != nil && !cur.isFailed() && (!found || owner.Node == cur.owner.Node) {
		// Healthy. Without an owner the link stays: the publisher may
		// come back to the same node within its grace period.
		return
	}
	if cur != nil {
		if cur.isFailed() {
			p.c.counts.failConnection.Add(1)
		}
		p.detach(cur)
	}
	if found && owner.Node == p.c.cfg.NodeID {
		p.followed(owner.Node) // the local publisher feeds the viewers
	}
	if !found || owner.Node == p.c.cfg.NodeID || p.c.ownsLocally(p.stream) {
		return
	}
	l, err := dial(ctx, p.c, p.stream, owner)
	if err != nil {
		if p.ctx.Err() == nil {
			p.c.counts.failDial.Add(1)
			p.logOnce("cluster pull failed", err)
		}
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil || p.c.ownsLocally(p.stream) {
		l.close()
		return
	}
	if err := l.attach(p.c.hub); err != nil {
		l.close()
		p.c.counts.failHub.Add(1)
		p.logOnce("cluster pull refused by the hub", err)
		return
	}
	p.cur, p.lastErr = l, ""
	p.c.counts.linked.Add(1)
	p.c.counts.started.Add(1)
	p.followed(owner.Node)
	p.c.log.Info("edge pull started", "stream", p.stream, "owner", owner.Node, "url", owner.URL)
}

// followed notes that node now feeds the stream here, and counts an owner
// move if another node did before.
func (p *pull) followed(node string) {
	if p.owner != "" && p.owner != node {
		p.c.counts.moves.Add(1)
	}
	p.owner = node
}

// detach ends the link l if it is still the current one; the hub stream
// waits for a successor.
func (p *pull) detach(l *link) {
	p.mu.Lock()
	if p.cur == l {
		p.cur = nil
		p.c.counts.linked.Add(-1)
	}
	p.mu.Unlock()
	l.close()
	p.c.log.Info("edge pull ended", "stream", p.stream, "owner", l.owner.Node, "reason", l.reason())
}

// take removes the current link, if any, and returns it for closing.
func (p *pull) take() *link {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.cur
	if l != nil {
		p.cur = nil
		p.c.counts.linked.Add(-1)
	}
	return l
}

// yield drops the link at once: a publisher on this node now owns the
// stream and takes over the hub stream that the link fed.
func (p *pull) yield() {
	if l := p.take(); l != nil {
		l.close()
		p.c.log.Info("edge pull yields to a local publisher", "stream", p.stream, "owner", l.owner.Node)
	}
}

// stop ends the pull for good (no viewers left, or the node is closing):
// the link closes and the hub stream it fed ends.
func (p *pull) stop() {
	l := p.take()
	if l == nil {
		return
	}
	l.close()
	if st := l.hubStream(); st != nil && st.Detached() && !p.c.ownsLocally(p.stream) {
		st.End()
	}
	p.c.log.Info("edge pull stopped", "stream", p.stream, "owner", l.owner.Node)
}

func (p *pull) logOnce(msg string, err error) {
	if s := err.Error(); s != p.lastErr && !errors.Is(err, context.Canceled) {
		p.lastErr = s
		p.c.log.Warn(msg, "stream", p.stream, "err", err)
	}
}
