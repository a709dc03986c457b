package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CountFunc reads a packet and byte counter that the media path keeps in
// atomics of its own (hub.Stream.Ingested, a WHEP session's sent count).
// It is called at scrape time only and must not block.
type CountFunc func() (packets, bytes uint64)

type flow struct{ packets, bytes uint64 }

func (f *flow) add(fn CountFunc) {
	p, b := fn()
	f.packets += p
	f.bytes += b
}

// streamEntry is what the metrics hold for one stream label value: the
// pre-resolved children of the labelled families, the live packet counters
// and the totals of the ended ones. With per-stream labels off there is a
// single entry, named "", that lives as long as the Metrics.
type streamEntry struct {
	name string
	refs int // open handles; the entry goes when it drops to 0 (per-stream labels only)

	in, out  map[*session]CountFunc
	doneIn   flow // packets of ended publishers, so that counters never go down
	doneOut  flow
	lags     map[*Lag]struct{}
	children streamChildren
}

// streamChildren are the per-stream series, resolved once per stream.
type streamChildren struct {
	lost, unrecovered, late, dup    prometheus.Counter
	nacksSent, plisSent             prometheus.Counter
	egressLost, nacksRecv, plisRecv prometheus.Counter
	ingestJitter, egressJitter, rtt prometheus.Observer
}

// flowCollector is the prometheus.Collector for everything read at scrape
// time: packets and bytes in and out, the number of streams, and the
// transcoder lag. It also owns the per-stream entries.
type flowCollector struct {
	m                      *Metrics
	packetsIn, bytesIn     *prometheus.Desc
	packetsOut, bytesOut   *prometheus.Desc
	streams, transcoderLag *prometheus.Desc

	mu      sync.Mutex
	entries map[string]*streamEntry
}

func (c *flowCollector) init(m *Metrics) {
	c.m = m
	var labels []string
	if m.cfg.PerStreamLabels {
		labels = []string{"stream"}
	}
	c.packetsIn = prometheus.NewDesc("sluice_ingest_packets_total",
		"RTP packets received from publishers and written to their stream (padding-only packets not included).", labels, nil)
	c.bytesIn = prometheus.NewDesc("sluice_ingest_bytes_total",
		"RTP payload bytes received from publishers and written to their stream.", labels, nil)
	c.packetsOut = prometheus.NewDesc("sluice_egress_packets_total",
		"RTP packets sent to viewers.", labels, nil)
	c.bytesOut = prometheus.NewDesc("sluice_egress_bytes_total",
		"RTP payload bytes sent to viewers.", labels, nil)
	c.streams = prometheus.NewDesc("sluice_streams",
		"Streams with a publisher session (connecting or connected).", nil, nil)
	c.transcoderLag = prometheus.NewDesc("sluice_transcoder_lag_seconds",
		"How far the Opus to AAC transcoder is behind the live edge; without per-stream labels, the largest lag of any stream (0 when none runs).", labels, nil)
	c.entries = make(map[string]*streamEntry)
	if !m.cfg.PerStreamLabels {
		c.acquire("").refs++ // never released: the unlabelled series always exist
	}
}

// acquire returns the entry for a stream name with one more reference.
func (c *flowCollector) acquire(stream string) *streamEntry {
	if !c.m.cfg.PerStreamLabels {
		stream = ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[stream]
	if e == nil {
		m := c.m
		var lv []string
		if m.cfg.PerStreamLabels {
			lv = []string{stream}
		}
		e = &streamEntry{
			name: stream,
			in:   make(map[*session]CountFunc),
			out:  make(map[*session]CountFunc),
			lags: make(map[*Lag]struct{}),
			children: streamChildren{
				lost:         m.lost.WithLabelValues(lv...),
				unrecovered:  m.unrecovered.WithLabelValues(lv...),
				late:         m.late.WithLabelValues(lv...),
				dup:          m.dup.WithLabelValues(lv...),
				nacksSent:    m.nacksSent.WithLabelValues(lv...),
				plisSent:     m.plisSent.WithLabelValues(lv...),
				egressLost:   m.egressLost.WithLabelValues(lv...),
				nacksRecv:    m.nacksRecv.WithLabelValues(lv...),
				plisRecv:     m.plisRecv.WithLabelValues(lv...),
				ingestJitter: m.ingestJitter.WithLabelValues(lv...),
				egressJitter: m.egressJitter.WithLabelValues(lv...),
				rtt:          m.rtt.WithLabelValues(lv...),
			},
		}
		c.entries[stream] = e
	}
	e.refs++
	return e
}

// release drops a reference; the last one removes a labelled stream's
// series.
func (c *flowCollector) release(e *streamEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs > 0 || !c.m.cfg.PerStreamLabels {
		return
	}
	delete(c.entries, e.name)
	m := c.m
	for _, v := range []*prometheus.CounterVec{m.lost, m.unrecovered, m.late, m.dup, m.nacksSent, m.plisSent, m.egressLost, m.nacksRecv, m.plisRecv} {
		v.DeleteLabelValues(e.name)
	}
	for _, v := range []*prometheus.HistogramVec{m.ingestJitter, m.egressJitter, m.rtt} {
		v.DeleteLabelValues(e.name)
	}
}

// addFlow makes a live counter part of the stream's totals.
func (c *flowCollector) addFlow(e *streamEntry, k kind, s *session, fn CountFunc) {
	c.mu.Lock()
	if k == whip {
		e.in[s] = fn
	} else {
		e.out[s] = fn
	}
	c.mu.Unlock()
}

// retireFlow moves a live counter's final value into the stream's totals
// in one step, so that no scrape sees it twice or not at all.
func (c *flowCollector) retireFlow(e *streamEntry, k kind, s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	live, done := e.in, &e.doneIn
	if k == whep {
		live, done = e.out, &e.doneOut
	}
	if fn, ok := live[s]; ok {
		delete(live, s)
		done.add(fn)
	}
}

// Describe implements prometheus.Collector.
func (c *flowCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packetsIn, c.bytesIn, c.packetsOut, c.bytesOut, c.streams, c.transcoderLag} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: it sums the live counters and
// the retired totals of each stream entry.
func (c *flowCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	streams := 0
	var maxLag time.Duration
	for _, e := range c.entries {
		in, out := e.doneIn, e.doneOut
		for _, fn := range e.in {
			in.add(fn)
		}
		for _, fn := range e.out {
			out.add(fn)
		}
		streams += len(e.in)
		var lv []string
		if c.m.cfg.PerStreamLabels {
			lv = []string{e.name}
		}
		ch <- prometheus.MustNewConstMetric(c.packetsIn, prometheus.CounterValue, float64(in.packets), lv...)
		ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(in.bytes), lv...)
		ch <- prometheus.MustNewConstMetric(c.packetsOut, prometheus.CounterValue, float64(out.packets), lv...)
		ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(out.bytes), lv...)
		var lag time.Duration
		for l := range e.lags {
			lag = max(lag, time.Duration(l.nanos.Load()))
		}
		if c.m.cfg.PerStreamLabels {
			if len(e.lags) > 0 {
				ch <- prometheus.MustNewConstMetric(c.transcoderLag, prometheus.GaugeValue, lag.Seconds(), lv...)
			}
		} else {
			maxLag = max(maxLag, lag)
		}
	}
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(streams))
	if !c.m.cfg.PerStreamLabels {
		ch <- prometheus.MustNewConstMetric(c.transcoderLag, prometheus.GaugeValue, maxLag.Seconds())
	}
}

// Lag is one stream's transcoder lag gauge. The transcoder Sets it as often
// as it likes (one atomic store); the collector reads it at scrape time.
type Lag struct {
	c     *flowCollector
	e     *streamEntry
	nanos atomic.Int64
	once  sync.Once
}

// TranscoderLag returns the lag gauge for one stream's transcoder; the
// caller must Close it when the transcoder stops.
func (m *Metrics) TranscoderLag(stream string) *Lag {
	m = m.orDiscard()
	l := &Lag{c: &m.flows, e: m.flows.acquire(stream)}
	m.flows.mu.Lock()
	l.e.lags[l] = struct{}{}
	m.flows.mu.Unlock()
	return l
}

// Set records how far the transcoder's output is behind its input.
func (l *Lag) Set(d time.Duration) { l.nanos.Store(int64(d)) }

// Close removes the gauge.
func (l *Lag) Close() {
	l.once.Do(func() {
		l.c.mu.Lock()
		delete(l.e.lags, l)
		l.c.mu.Unlock()
		l.c.release(l.e)
	})
}
