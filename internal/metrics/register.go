package metrics

import "github.com/prometheus/client_golang/prometheus"

// Register adds a part's own collector (the forwarder's) to the registry
// served at /metrics.
func (m *Metrics) Register(c prometheus.Collector) error {
	return m.orDiscard().reg.Register(c)
}
