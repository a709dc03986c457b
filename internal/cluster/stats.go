package cluster

import "sync/atomic"

// Stats is what the node counts of its part in the cluster, for the
// metrics: gauges of what holds now and monotonic counters.
type Stats struct {
	OwnedStreams int    // streams whose lease this node holds
	EdgePulls    int    // pulls with a live link to another node
	PullsStarted uint64 // links to an owner started (signalled and attached to the hub)
	PullFailures PullFailures
	OwnerMoves   uint64 // pulls that followed their stream to a new owner node (a link to it, or its local publisher)
	Redirects    uint64 // viewers sent to another node (307)
	Full         uint64 // viewers refused because no node had room (503)
	LeaseFails   uint64 // lease renewals that Redis did not answer
	LeasesLost   uint64 // leases found replaced by another node's at renewal
	// Packets of the edge pulls' tracks that the reorder window dropped as
	// too late or seen before, and sequence numbers it gave up on.
	PullLate, PullDuplicates, PullUnrecovered uint64
}

// PullFailures counts failed attempts to feed a stream from its owner, by
// where they failed.
type PullFailures struct {
	Registry   uint64 // the owner could not be looked up (Redis)
	Dial       uint64 // the WHEP session to the owner could not be made
	Hub        uint64 // this node's hub refused the pulled stream
	Connection uint64 // a started link failed (ICE/DTLS, or the owner ended it)
}

// counters are the Cluster's monotonic counts and its live-link gauge,
// updated where the events happen.
type counters struct {
	linked                    atomic.Int64
	started, moves, redirects atomic.Uint64
	full                      atomic.Uint64
	failRegistry, failDial    atomic.Uint64
	failHub, failConnection   atomic.Uint64
	// The edge pulls' ingest counters (ingest.Counter).
	pullLate, pullDup, pullUnrecovered atomicCounter
}

// atomicCounter is an ingest.Counter summed over every link.
type atomicCounter struct{ atomic.Uint64 }

// Inc counts one.
func (c *atomicCounter) Inc() { c.Add(1) }

// Stats reads the node's counts; cheap enough to call at every scrape.
func (c *Cluster) Stats() Stats {
	c.mu.Lock()
	owned := len(c.owned)
	c.mu.Unlock()
	n := &c.counts
	return Stats{
		OwnedStreams: owned,
		EdgePulls:    int(n.linked.Load()),
		PullsStarted: n.started.Load(),
		PullFailures: PullFailures{
			Registry: n.failRegistry.Load(), Dial: n.failDial.Load(),
			Hub: n.failHub.Load(), Connection: n.failConnection.Load(),
		},
		OwnerMoves: n.moves.Load(),
		Redirects:  n.redirects.Load(),
		Full:       n.full.Load(),
		LeaseFails: c.reg.renewFails.Load(),
		LeasesLost: c.reg.leasesLost.Load(),

		PullLate: n.pullLate.Load(), PullDuplicates: n.pullDup.Load(), PullUnrecovered: n.pullUnrecovered.Load(),
	}
}
