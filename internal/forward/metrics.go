package forward

import "github.com/prometheus/client_golang/prometheus"

// Collector returns the forwarder's metrics (sluice_forward_*), read at
// scrape time.
func (f *Forwarder) Collector() prometheus.Collector {
	return &collector{f: f,
		targets: prometheus.NewDesc("sluice_forward_targets",
			"Forward targets of published streams, by state: connecting (dialing, or waiting for a keyframe), running (sending) or retrying (waiting after a failure).",
			[]string{"state"}, nil),
		attempts: prometheus.NewDesc("sluice_forward_attempts_total",
			"Connections to forward targets tried (the first one and every retry).", nil, nil),
		failures: prometheus.NewDesc("sluice_forward_failures_total",
			"Forward attempts that failed (the target refused or dropped the stream, or a write timed out); each is retried with back-off.", nil, nil),
		bytes: prometheus.NewDesc("sluice_forward_bytes_sent_total",
			"Bytes sent to forward targets (RTMP chunks, SRT payloads).", nil, nil),
	}
}

type collector struct {
	f                                  *Forwarder
	targets, attempts, failures, bytes *prometheus.Desc
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.targets
	ch <- c.attempts
	ch <- c.failures
	ch <- c.bytes
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.f.Stats()
	for state, n := range map[State]int{StateConnecting: s.Connecting, StateRunning: s.Running, StateRetrying: s.Retrying} {
		ch <- prometheus.MustNewConstMetric(c.targets, prometheus.GaugeValue, float64(n), string(state))
	}
	ch <- prometheus.MustNewConstMetric(c.attempts, prometheus.CounterValue, float64(s.Attempts))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(s.Failures))
	ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes))
}
