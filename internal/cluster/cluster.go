// Package cluster makes several sluice nodes one origin/edge cluster over
// a shared Redis: the node that receives a WHIP publish owns the stream (a
// lease in Redis, renewed while the publisher lives); a node asked for a
// stream it does not own pulls it once from the owner over WHEP and fans it
// out to its own viewers (an edge); a node at capacity redirects viewers to
// one with room. Nothing in the hub knows about other nodes: an edge's pull
// is simply the stream's publisher there.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/rtc"
)

// Config is a node's place in the cluster.
type Config struct {
	NodeID    string
	PublicURL string // base URL, without a trailing slash
	Capacity  int    // WHEP viewers before redirecting; 0: no limit
	Secret    string
	LeaseTTL  time.Duration
	Linger    time.Duration // an edge pull outlives its last viewer this long
	// ConnectTimeout bounds an edge pull's ICE/DTLS connection.
	ConnectTimeout time.Duration
	// Ingest is how pulled tracks are taken in, as publishers' are.
	Ingest ingest.Options
}

// peerFactory is what an edge pull needs from rtc.Engine: a PeerConnection
// that receives the ingest codecs on the shared UDP port.
type peerFactory interface {
	NewPublisherPC(obs rtc.RTCPObserver) (*webrtc.PeerConnection, error)
}

// Cluster is this node's side of the cluster.
type Cluster struct {
	cfg   Config
	reg   *Registry
	hub   *hub.Hub
	peers peerFactory
	log   *slog.Logger
	hc    *http.Client
	poll  time.Duration // how often an edge checks its stream's owner

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	nudge  chan struct{} // asks the advert loop to write now

	claimMu sync.Mutex // serialises Publish

	mu       sync.Mutex
	viewers  int                   // WHEP viewers admitted here, not peers
	pulls    map[string]*pull      // streams with viewers here, by name
	stopping map[string]*pull      // pulls cancelled whose run has not returned
	owned    map[string]*ownership // streams published here
	closed   bool

	counts counters
}

// ownership is a stream this node owns, shared by the local publishers of
// it (a takeover overlaps the old and the new one).
type ownership struct {
	lease *Lease
	refs  int
}

// New joins the cluster: it checks that Redis answers and starts
// advertising the node. Close leaves it.
func New(cfg Config, reg *Registry, h *hub.Hub, peers peerFactory, log *slog.Logger) (*Cluster, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		cfg: cfg, reg: reg, hub: h, peers: peers, log: log.With("node", cfg.NodeID),
		hc:   &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}},
		poll: max(cfg.LeaseTTL/4, 100*time.Millisecond),
		ctx:  ctx, cancel: cancel, nudge: make(chan struct{}, 1),
		pulls: make(map[string]*pull), stopping: make(map[string]*pull), owned: make(map[string]*ownership),
	}
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if err := reg.Ping(pctx); err != nil {
		cancel()
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	if err := reg.Advertise(pctx, c.advert()); err != nil {
		cancel()
		return nil, fmt.Errorf("cluster.redis: %w", err)
	}
	c.wg.Go(c.advertise)
	c.log.Info("joined cluster", "url", cfg.PublicURL, "capacity", cfg.Capacity)
	return c, nil
}

// Close stops every edge pull, withdraws the node's advert and closes the
// Redis connections. Local publishers must be closed first: each gives its
// stream's ownership back as it ends.
func (c *Cluster) Close() {
	c.mu.Lock()
	c.closed = true
	pulls := make([]*pull, 0, len(c.pulls))
	for _, p := range c.pulls {
		pulls = append(pulls, p)
		if p.linger != nil {
			p.linger.Stop()
		}
	}
	c.mu.Unlock()
	for _, p := range pulls {
		p.cancel()
	}
	c.cancel()
	c.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.reg.Withdraw(ctx, c.cfg.NodeID)
	c.hc.CloseIdleConnections()
	_ = c.reg.Close()
	c.log.Info("left cluster")
}

// Publish claims stream for a publisher on this node. release gives the
// claim back (the publisher ended or failed); lost is closed if the lease
// was lost to another node, and the publisher should then stop. A stream
// owned by another node gets an error wrapping ErrOwned.
func (c *Cluster) Publish(ctx context.Context, stream string) (release func(), lost <-chan struct{}, err error) {
	// One claim at a time: two local publishers of a stream share one
	// lease rather than take it from each other.
	c.claimMu.Lock()
	defer c.claimMu.Unlock()
	c.mu.Lock()
	o := c.owned[stream]
	if o != nil {
		o.refs++
	}
	c.mu.Unlock()
	if o == nil {
		l, err := c.reg.Claim(ctx, stream, c.cfg.NodeID, c.cfg.PublicURL)
		if err != nil {
			return nil, nil, err
		}
		o = &ownership{lease: l, refs: 1}
		c.mu.Lock()
		c.owned[stream] = o
		p := c.pulls[stream]
		c.mu.Unlock()
		c.log.Info("stream owned", "stream", stream)
		if p != nil {
			// Viewers here were fed by a pull from the old owner: the
			// local publisher takes their stream over.
			p.yield()
		}
	}
	return sync.OnceFunc(func() { c.disown(stream, o) }), o.lease.Lost(), nil
}

func (c *Cluster) disown(stream string, o *ownership) {
	c.mu.Lock()
	o.refs--
	last := o.refs == 0
	if last && c.owned[stream] == o {
		delete(c.owned, stream)
	}
	c.mu.Unlock()
	if last {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		o.lease.Release(ctx)
		c.log.Info("stream released", "stream", stream)
	}
}

// ownsLocally reports whether a publisher on this node owns stream.
func (c *Cluster) ownsLocally(stream string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.owned[stream] != nil
}

// View admits a WHEP viewer of stream. When this node is at capacity, it
// returns the base URL of a node with room (redirect) or an error wrapping
// ErrFull. Otherwise the viewer counts against the capacity until leave is
// called, and the stream is fed here: by its local publisher, or by a pull
// from its owner, started now if it is not running (View waits for its
// first attempt, bounded by ctx).
func (c *Cluster) View(ctx context.Context, stream string) (redirect string, leave func(), err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return "", nil, fmt.Errorf("%w: node is shutting down", ErrUnavailable)
	}
	if c.cfg.Capacity > 0 && c.viewers >= c.cfg.Capacity {
		c.mu.Unlock()
		url, err := c.roomyNode(ctx)
		switch {
		case err == nil:
			c.counts.redirects.Add(1)
		case errors.Is(err, ErrFull):
			c.counts.full.Add(1)
		}
		return url, nil, err
	}
	c.viewers++
	p := c.pulls[stream]
	if p == nil {
		p = newPull(c, stream, c.stopping[stream])
		c.pulls[stream] = p
		c.wg.Go(p.run)
	}
	p.viewers++
	if p.linger != nil {
		p.linger.Stop()
		p.linger = nil
	}
	c.mu.Unlock()
	c.advertiseSoon()
	leave = sync.OnceFunc(func() { c.leave(p) })
	select {
	case <-p.tried:
	case <-ctx.Done():
		leave()
		return "", nil, ctx.Err()
	}
	return "", leave, nil
}

// leave counts a viewer out; the stream's pull stops after the linger
// period if no viewer came back.
func (c *Cluster) leave(p *pull) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.viewers--
	p.viewers--
	c.advertiseSoon()
	if p.viewers > 0 || c.closed {
		return
	}
	if c.cfg.Linger <= 0 {
		c.stopPull(p)
		return
	}
	p.linger = time.AfterFunc(c.cfg.Linger, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if p.viewers == 0 && c.pulls[p.stream] == p {
			c.stopPull(p)
		}
	})
}

// stopPull cancels a pull that has no viewers left; c.mu is held.
func (c *Cluster) stopPull(p *pull) {
	delete(c.pulls, p.stream)
	c.stopping[p.stream] = p
	p.cancel()
}

// stopped forgets a pull whose run is returning.
func (c *Cluster) stopped(p *pull) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping[p.stream] == p {
		delete(c.stopping, p.stream)
	}
}

// roomyNode returns the URL of the least loaded other node with room.
func (c *Cluster) roomyNode(ctx context.Context) (string, error) {
	nodes, err := c.reg.Nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.ID != c.cfg.NodeID && n.hasRoom() && n.URL != "" {
			return n.URL, nil
		}
	}
	return "", fmt.Errorf("%w (this node holds %d)", ErrFull, c.cfg.Capacity)
}

func (c *Cluster) advert() Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Node{ID: c.cfg.NodeID, URL: c.cfg.PublicURL, Viewers: c.viewers, Capacity: c.cfg.Capacity}
}

// advertiseSoon asks the advert loop to write the node's load now.
func (c *Cluster) advertiseSoon() {
	select {
	case c.nudge <- struct{}{}:
	default:
	}
}

// advertise renews the node's advert every third of the lease TTL, and
// when its load changes.
func (c *Cluster) advertise() {
	t := time.NewTicker(c.cfg.LeaseTTL / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		case <-c.nudge:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.LeaseTTL/3)
		err := c.reg.Advertise(ctx, c.advert())
		cancel()
		if err != nil && !failing && c.ctx.Err() == nil {
			c.log.Warn("cluster advert failed", "err", err)
		}
		failing = err != nil
	}
}
