// Package metrics owns sluice's Prometheus metrics: a private registry, the
// counters and histograms sessions update through pre-resolved handles, and
// a collector that reads the per-stream and per-viewer packet counters kept
// by the hub and the WHEP sessions at scrape time, so that the media path
// pays no more than a couple of atomic adds per packet.
//
// Labels stay bounded: sessions, setups and failures are labelled by kind
// (whip, whep) and reason only; a stream label is added to the per-stream
// families only when Config.PerStreamLabels is set, and those series go away
// when the stream's last session ends.
package metrics

import (
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the metrics share of the configuration.
type Config struct {
	// PerStreamLabels adds a "stream" label to the per-stream families
	// (packets, bytes, loss, NACKs, PLIs, jitter, RTT, transcoder lag).
	// Off by default: every stream name would be a new set of series.
	PerStreamLabels bool
}

// Session kinds, the values of the "kind" label.
const (
	KindWHIP = "whip"
	KindWHEP = "whep"
)

// Failure reasons, the values of the "reason" label of
// sluice_ice_failures_total. The empty string is no failure.
const (
	FailConnectTimeout = "connect_timeout" // not ICE+DTLS connected within webrtc.connect_timeout
	FailICE            = "ice_failed"      // the ICE or DTLS connection failed, before or after connecting
)

type kind int

const (
	whip kind = iota
	whep
)

var kindNames = [2]string{KindWHIP, KindWHEP}

type state int

const (
	stateNew state = iota
	stateConnecting
	stateConnected
	stateClosed
)

var failureNames = [2]string{FailConnectTimeout, FailICE}

// Metrics is one server's metrics. Its methods are safe for concurrent use;
// a nil *Metrics hands out handles that count into a registry nobody
// scrapes, so code paths need no nil checks.
type Metrics struct {
	cfg Config
	reg *prometheus.Registry

	sessions *prometheus.GaugeVec
	gauges   [2][stateClosed]prometheus.Gauge // [kind][state]; stateNew unused
	created  [2]prometheus.Counter
	setup    [2]prometheus.Observer
	iceFail  [2][2]prometheus.Counter // [kind][failure]
	rejected *prometheus.CounterVec

	// Per-stream families: labelled by stream or not at all.
	lost, unrecovered, late, dup    *prometheus.CounterVec
	nacksSent, plisSent             *prometheus.CounterVec
	egressLost, nacksRecv, plisRecv *prometheus.CounterVec
	ingestJitter, egressJitter, rtt *prometheus.HistogramVec

	flows    flowCollector
	webhooks webhookCollector
	outputs  outputsCollector
	cluster  clusterCollector
	sources  sourcesCollector
}

// New returns metrics with every family registered on a fresh private
// registry, next to the Go runtime, process and build-info collectors.
func New(cfg Config) *Metrics {
	m := &Metrics{cfg: cfg, reg: prometheus.NewRegistry()}
	var streamLabel []string
	if cfg.PerStreamLabels {
		streamLabel = []string{"stream"}
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, streamLabel)
	}
	histogram := func(name, help string, buckets []float64) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, streamLabel)
	}

	m.sessions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sluice_sessions",
		Help: "Open WHIP (publisher) and WHEP (viewer) sessions, by state: connecting (answered, ICE/DTLS not up yet) or connected.",
	}, []string{"kind", "state"})
	created := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_sessions_created_total",
		Help: "Sessions negotiated (SDP answer sent), by kind.",
	}, []string{"kind"})
	setup := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "sluice_session_setup_seconds",
		Help:    "Time from the WHIP/WHEP POST to the ICE+DTLS connection, for sessions that connected.",
		Buckets: []float64{0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1, 2, 5, 10, 30},
	}, []string{"kind"})
	iceFail := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_ice_failures_total",
		Help: "Sessions ended by a connection failure, by kind and reason (connect_timeout, ice_failed).",
	}, []string{"kind", "reason"})
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sluice_offers_rejected_total",
		Help: "WHIP/WHEP POSTs answered with an error status instead of a session, by kind and status code.",
	}, []string{"kind", "status"})
	for k, kn := range kindNames {
		for st, sn := range []string{stateConnecting: "connecting", stateConnected: "connected"} {
			if sn != "" {
				m.gauges[k][st] = m.sessions.WithLabelValues(kn, sn)
			}
		}
		m.created[k] = created.WithLabelValues(kn)
		m.setup[k] = setup.WithLabelValues(kn)
		for f, fn := range failureNames {
			m.iceFail[k][f] = iceFail.WithLabelValues(kn, fn)
		}
	}

	m.lost = counter("sluice_ingest_packets_lost_total",
		"RTP packets from publishers lost on the way, before any retransmission repaired them: the cumulative loss in the RTCP receiver reports sluice sends (RFC 3550 §6.4.1).")
	m.unrecovered = counter("sluice_ingest_packets_unrecovered_total",
		"RTP sequence numbers from publishers that the reorder window gave up on: lost for good, neither reordered nor retransmitted in time.")
	m.late = counter("sluice_ingest_packets_late_total",
		"RTP packets from publishers that arrived after the reorder window had moved past them, and were dropped.")
	m.dup = counter("sluice_ingest_packets_duplicated_total",
		"RTP packets from publishers received more than once, and dropped.")
	m.nacksSent = counter("sluice_nacks_sent_total",
		"RTP packets sluice asked publishers to send again, in RTCP generic NACKs (RFC 4585 §6.2.1).")
	m.plisSent = counter("sluice_plis_sent_total",
		"Keyframe requests (RTCP PLI or FIR) sent to publishers.")
	m.egressLost = counter("sluice_egress_packets_lost_total",
		"RTP packets viewers report lost, from the cumulative loss in their RTCP receiver reports.")
	m.nacksRecv = counter("sluice_nacks_received_total",
		"RTP packets viewers asked to be sent again, in RTCP generic NACKs (not answered: sluice does not retransmit to viewers).")
	m.plisRecv = counter("sluice_plis_received_total",
		"Keyframe requests (RTCP PLI or FIR) received from viewers, before the per-stream rate limit.")
	jitterBuckets := []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5}
	m.ingestJitter = histogram("sluice_ingest_jitter_seconds",
		"Interarrival jitter of publishers' RTP as sluice measures it, one observation per RTCP receiver report block.", jitterBuckets)
	m.egressJitter = histogram("sluice_egress_jitter_seconds",
		"Interarrival jitter that viewers report in their RTCP receiver reports.", jitterBuckets)
	m.rtt = histogram("sluice_egress_rtt_seconds",
		"Round-trip time to viewers, from the LSR/DLSR of their RTCP receiver reports (RFC 3550 §6.4.1).",
		[]float64{0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 1, 2})

	m.flows.init(m)
	m.webhooks.init()
	m.outputs.init()
	m.cluster.init()
	m.sources.init(cfg.PerStreamLabels)
	m.reg.MustRegister(
		m.sessions, created, setup, iceFail, m.rejected,
		m.lost, m.unrecovered, m.late, m.dup, m.nacksSent, m.plisSent,
		m.egressLost, m.nacksRecv, m.plisRecv,
		m.ingestJitter, m.egressJitter, m.rtt,
		&m.flows,
		&m.webhooks,
		&m.outputs,
		&m.cluster,
		&m.sources,
		buildInfo(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// discard backs the handles of a nil *Metrics.
var discard = sync.OnceValue(func() *Metrics { return New(Config{}) })

func (m *Metrics) orDiscard() *Metrics {
	if m == nil {
		return discard()
	}
	return m
}

// Handler serves the registry in the Prometheus text (or OpenMetrics)
// format, and counts its own scrapes.
func (m *Metrics) Handler() http.Handler {
	m = m.orDiscard()
	return promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg,
		EnableOpenMetrics: true,
	}))
}

// Gatherer is the private registry, for tests and for embedding the metrics
// in another exporter.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.orDiscard().reg }

// OfferRejected counts a WHIP or WHEP POST that got status instead of a
// session. kind is KindWHIP or KindWHEP.
func (m *Metrics) OfferRejected(kind string, status int) {
	m.orDiscard().rejected.WithLabelValues(kind, strconv.Itoa(status)).Inc()
}
