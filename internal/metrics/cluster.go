package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Cluster is what the metrics read of this node's part in the origin/edge
// cluster at scrape time. In single-node mode it is never set and every
// family reads 0.
type Cluster struct {
	OwnedStreams int    // streams whose lease this node holds
	EdgePulls    int    // pulls from another node with a live link
	PullsStarted uint64 // links to an owner started
	// Failed attempts to feed a stream from its owner, by reason.
	PullFailsRegistry   uint64 // the owner could not be looked up (Redis)
	PullFailsDial       uint64 // the WHEP session to the owner could not be made
	PullFailsHub        uint64 // the hub refused the pulled stream
	PullFailsConnection uint64 // a started link failed
	OwnerMoves          uint64 // pulls that followed their stream to a new owner node
	Redirects           uint64 // viewers redirected to another node (307)
	Full                uint64 // viewers refused: no node had room (503)
	LeaseRenewalsFailed uint64 // lease renewals Redis did not answer
	LeasesLost          uint64 // leases found replaced by another node's
	// Edge pulls' packets dropped by the reorder window as late or
	// duplicate, and sequence numbers given up on.
	PullLate, PullDuplicates, PullUnrecovered uint64
}

// Pull failure reasons, the values of the "reason" label of
// sluice_cluster_pull_failures_total.
const (
	PullFailRegistry   = "registry"
	PullFailDial       = "dial"
	PullFailHub        = "hub"
	PullFailConnection = "connection"
)

// clusterCollector reads Cluster from the function the server set.
type clusterCollector struct {
	owned, pulls, started, fails, moves *prometheus.Desc
	redirects, full, renewFails, lost   *prometheus.Desc
	pullPackets                         *prometheus.Desc

	mu   sync.Mutex
	read func() Cluster
}

func (c *clusterCollector) init() {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	c.owned = d("sluice_cluster_owned_streams", "Streams whose lease this node holds in the cluster (published here).")
	c.pulls = d("sluice_cluster_edge_pulls", "Streams this node pulls from their owner on another node, with a live link.")
	c.started = d("sluice_cluster_pulls_started_total", "Edge pull links started: a WHEP session to the stream's owner, attached to this node's hub.")
	c.fails = prometheus.NewDesc("sluice_cluster_pull_failures_total",
		"Failed attempts to feed a stream from its owner, by reason: registry (owner lookup in Redis), dial (WHEP session to the owner), hub (refused here), connection (a started link failed).",
		[]string{"reason"}, nil)
	c.moves = d("sluice_cluster_owner_moves_total", "Pulls that followed their stream to a new owner node: a link to it, or its publisher arriving on this node.")
	c.redirects = d("sluice_cluster_redirects_total", "WHEP viewers answered 307 to a node with room because this node was at cluster.capacity.")
	c.full = d("sluice_cluster_full_total", "WHEP viewers answered 503 because no node of the cluster had room.")
	c.renewFails = d("sluice_cluster_lease_renewals_failed_total", "Stream lease renewals that Redis did not answer (retried at the next tick).")
	c.pullPackets = prometheus.NewDesc("sluice_cluster_pull_packets_dropped_total",
		"Packets of edge pulls' tracks the reorder window dropped (late: after their gap was given up; duplicate: seen before) or gave up on (unrecovered).",
		[]string{"reason"}, nil)
	c.lost = d("sluice_cluster_leases_lost_total", "Stream leases found replaced by another node's at renewal; the local publisher is closed.")
}

// SetCluster sets where the cluster metrics come from; read is called at
// scrape time and must not block. Until it is set they read 0.
func (m *Metrics) SetCluster(read func() Cluster) {
	m = m.orDiscard()
	m.cluster.mu.Lock()
	m.cluster.read = read
	m.cluster.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.owned, c.pulls, c.started, c.fails, c.moves,
		c.redirects, c.full, c.renewFails, c.lost, c.pullPackets} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	var s Cluster
	if read != nil {
		s = read()
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.owned, float64(s.OwnedStreams))
	gauge(c.pulls, float64(s.EdgePulls))
	counter(c.started, s.PullsStarted)
	counter(c.fails, s.PullFailsRegistry, PullFailRegistry)
	counter(c.fails, s.PullFailsDial, PullFailDial)
	counter(c.fails, s.PullFailsHub, PullFailHub)
	counter(c.fails, s.PullFailsConnection, PullFailConnection)
	counter(c.moves, s.OwnerMoves)
	counter(c.redirects, s.Redirects)
	counter(c.full, s.Full)
	counter(c.renewFails, s.LeaseRenewalsFailed)
	counter(c.lost, s.LeasesLost)
	counter(c.pullPackets, s.PullLate, "late")
	counter(c.pullPackets, s.PullDuplicates, "duplicate")
	counter(c.pullPackets, s.PullUnrecovered, "unrecovered")
}
