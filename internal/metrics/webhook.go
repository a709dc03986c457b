package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// WebhookStats is what the metrics read of one webhook (webhook.Hook): its
// own monotonic counters.
type WebhookStats interface {
	Delivered() uint64
	Failed() uint64
	Dropped() uint64
}

// webhookCollector sums the counters of every webhook at scrape time.
type webhookCollector struct {
	delivered, failed, dropped *prometheus.Desc

	mu    sync.Mutex
	hooks []WebhookStats
}

func (c *webhookCollector) init() {
	c.delivered = prometheus.NewDesc("sluice_webhook_delivered_total",
		"Webhook events the endpoints accepted (2xx).", nil, nil)
	c.failed = prometheus.NewDesc("sluice_webhook_failed_total",
		"Webhook events given up after all retries.", nil, nil)
	c.dropped = prometheus.NewDesc("sluice_webhook_queue_dropped_total",
		"Webhook events dropped because a delivery queue (or its event bus buffer) was full.", nil, nil)
}

// AddWebhook makes a webhook's counters part of the sluice_webhook_*
// totals. Its counters must keep their values after the hook is closed.
func (m *Metrics) AddWebhook(h WebhookStats) {
	m = m.orDiscard()
	m.webhooks.mu.Lock()
	m.webhooks.hooks = append(m.webhooks.hooks, h)
	m.webhooks.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *webhookCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.delivered
	ch <- c.failed
	ch <- c.dropped
}

// Collect implements prometheus.Collector.
func (c *webhookCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	var delivered, failed, dropped uint64
	for _, h := range c.hooks {
		delivered += h.Delivered()
		failed += h.Failed()
		dropped += h.Dropped()
	}
	c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(c.delivered, prometheus.CounterValue, float64(delivered))
	ch <- prometheus.MustNewConstMetric(c.failed, prometheus.CounterValue, float64(failed))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(dropped))
}
