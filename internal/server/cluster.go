package server

import (
	"log/slog"
	"net"

	"github.com/sluice-media/sluice/internal/cluster"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/rtc"
)

// joinCluster joins the origin/edge cluster when cluster.redis is set; it
// returns nil in single-node mode. The public URL defaults to the HTTP
// listener's bound address, so that port 0 works in tests.
func joinCluster(cfg config.Config, addr net.Addr, tls bool, h *hub.Hub, engine *rtc.Engine, log *slog.Logger) (*cluster.Cluster, error) {
	c := cfg.Cluster
	if c.Redis == "" {
		return nil, nil
	}
	url := c.PublicURL
	if url == "" {
		scheme := "http://"
		if tls {
			scheme = "https://"
		}
		url = scheme + addr.String()
	}
	id := c.NodeID
	if id == "" {
		id = rtc.NewID()[:12]
	}
	reg, err := cluster.NewRegistry(c.Redis, c.LeaseTTL)
	if err != nil {
		return nil, err
	}
	cl, err := cluster.New(cluster.Config{
		NodeID: id, PublicURL: trimSlash(url), Capacity: c.Capacity, Secret: c.Secret,
		LeaseTTL: c.LeaseTTL, Linger: c.Linger, ConnectTimeout: cfg.WebRTC.ConnectTimeout,
		Ingest: ingestOptions(cfg.Stream),
	}, reg, h, engine, log)
	if err != nil {
		_ = reg.Close()
		return nil, err
	}
	return cl, nil
}

// clusterCounts reads the node's cluster counts for the metrics.
func clusterCounts(cl *cluster.Cluster) metrics.Cluster {
	s := cl.Stats()
	return metrics.Cluster{
		OwnedStreams: s.OwnedStreams, EdgePulls: s.EdgePulls, PullsStarted: s.PullsStarted,
		PullFailsRegistry: s.PullFailures.Registry, PullFailsDial: s.PullFailures.Dial,
		PullFailsHub: s.PullFailures.Hub, PullFailsConnection: s.PullFailures.Connection,
		OwnerMoves: s.OwnerMoves, Redirects: s.Redirects, Full: s.Full,
		LeaseRenewalsFailed: s.LeaseFails, LeasesLost: s.LeasesLost,
		PullLate: s.PullLate, PullDuplicates: s.PullDuplicates, PullUnrecovered: s.PullUnrecovered,
	}
}

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}
