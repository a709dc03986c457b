package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Source is what the metrics read of one pulled source (a camera) at
// scrape time.
type Source struct {
	Stream     string
	Connected  bool   // media flows from it now
	Reconnects uint64 // attempts after the first, so far
}

// sourcesCollector reads the sources from the function the server set:
// one series per source with per-stream labels, else sums.
type sourcesCollector struct {
	perStream                     bool
	configured, connected, recons *prometheus.Desc

	mu   sync.Mutex
	read func() []Source
}

func (c *sourcesCollector) init(perStream bool) {
	c.perStream = perStream
	var labels []string
	if perStream {
		labels = []string{"stream"}
	}
	c.configured = prometheus.NewDesc("sluice_sources", "Pulled sources configured (cameras, other RTSP servers), pulled or not.", nil, nil)
	c.connected = prometheus.NewDesc("sluice_source_connected",
		"Pulled sources whose media flows into sluice now (1 per connected source with per-stream labels).", labels, nil)
	c.recons = prometheus.NewDesc("sluice_source_reconnects_total",
		"Attempts to pull a source again after it failed, was refused or was lost (each waits its back-off: 1 s doubling to 30 s).", labels, nil)
}

// SetSources sets where the source metrics come from; read is called at
// scrape time and must not block. Until it is set they read 0.
func (m *Metrics) SetSources(read func() []Source) {
	m = m.orDiscard()
	m.sources.mu.Lock()
	m.sources.read = read
	m.sources.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *sourcesCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.configured
	ch <- c.connected
	ch <- c.recons
}

// Collect implements prometheus.Collector.
func (c *sourcesCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	var list []Source
	if read != nil {
		list = read()
	}
	ch <- prometheus.MustNewConstMetric(c.configured, prometheus.GaugeValue, float64(len(list)))
	var connected, recons float64
	for _, s := range list {
		v := 0.0
		if s.Connected {
			v = 1
		}
		if c.perStream {
			ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, v, s.Stream)
			ch <- prometheus.MustNewConstMetric(c.recons, prometheus.CounterValue, float64(s.Reconnects), s.Stream)
		}
		connected += v
		recons += float64(s.Reconnects)
	}
	if !c.perStream {
		ch <- prometheus.MustNewConstMetric(c.connected, prometheus.GaugeValue, connected)
		ch <- prometheus.MustNewConstMetric(c.recons, prometheus.CounterValue, recons)
	}
}
