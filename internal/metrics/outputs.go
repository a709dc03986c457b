package metrics

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Outputs is what the metrics read of the server-side outputs (the
// Opus→AAC transcoders, LL-HLS, recording) at scrape time: gauges of
// what runs now and the outputs' own monotonic counters.
type Outputs struct {
	Transcoders int // Opus→AAC transcoders running
	// TranscodersBy are the transcoders running by direction, "from" and
	// "to" codec ({opus, aac} included: it counts them, not Transcoders,
	// where set).
	TranscodersBy   map[[2]string]int
	TranscodedAudio float64 // seconds of audio encoded to AAC
	TranscodeErrors uint64  // transcoders stopped by an encoder error
	HLSMuxers       int     // LL-HLS muxers running
	HLSSegments     uint64  // LL-HLS segments completed
	Recorders       int     // streams being recorded
	RecordFiles     uint64  // recording segment files finished
	RecordBytes     uint64  // bytes written to recordings
	RecordErrors    uint64  // recordings stopped by an error (a full disk)
	RecordRemoved   uint64  // recording files deleted by retention
}

// outputsCollector reads Outputs from the function the server set.
type outputsCollector struct {
	transcoders, transcoded, transcodeErrs *prometheus.Desc
	muxers, segments                       *prometheus.Desc
	recorders, files, bytes, errs, removed *prometheus.Desc

	mu   sync.Mutex
	read func() Outputs
}

func (c *outputsCollector) init() {
	d := func(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }
	c.transcoders = prometheus.NewDesc("sluice_transcoders", "Audio transcoders running, by source and output codec: Opus to AAC one per stream whose LL-HLS or recording needs AAC (shared by both), AAC and G.711 to Opus one per stream with WebRTC viewers that need Opus (shared by them all), G.711 to AAC like Opus to AAC.", []string{"from", "to"}, nil)
	c.transcoded = d("sluice_transcoded_audio_seconds_total", "Seconds of audio the transcoders encoded to AAC.")
	c.transcodeErrs = d("sluice_transcode_errors_total", "Transcoders stopped by an AAC encoder error (the output goes on without audio).")
	c.muxers = d("sluice_hls_muxers", "LL-HLS muxers running, one per stream being served as HLS.")
	c.segments = d("sluice_hls_segments_total", "LL-HLS segments completed (cut at the first keyframe after hls.segment_duration).")
	c.recorders = d("sluice_recorders", "Streams being recorded now.")
	c.files = d("sluice_record_files_total", "Recording segment files finished and closed whole.")
	c.bytes = d("sluice_record_bytes_total", "Bytes written to recording files.")
	c.errs = d("sluice_record_errors_total", "Recordings stopped by a write error (such as a full disk); live media goes on.")
	c.removed = d("sluice_record_files_removed_total", "Recording files deleted by retention (record max_age, max_size).")
}

// SetOutputs sets where the output metrics come from; read is called at
// scrape time and must not block. Until it is set they read 0.
func (m *Metrics) SetOutputs(read func() Outputs) {
	m = m.orDiscard()
	m.outputs.mu.Lock()
	m.outputs.read = read
	m.outputs.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *outputsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.transcoders, c.transcoded, c.transcodeErrs, c.muxers, c.segments,
		c.recorders, c.files, c.bytes, c.errs, c.removed} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *outputsCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	read := c.read
	c.mu.Unlock()
	var o Outputs
	if read != nil {
		o = read()
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	by := map[[2]string]int{{"opus", "aac"}: o.Transcoders, {"aac", "opus"}: 0, {"pcma", "opus"}: 0, {"pcmu", "opus"}: 0}
	for k, n := range o.TranscodersBy {
		by[k] = n
	}
	for k, n := range by {
		ch <- prometheus.MustNewConstMetric(c.transcoders, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
	counter(c.transcoded, o.TranscodedAudio)
	counter(c.transcodeErrs, float64(o.TranscodeErrors))
	gauge(c.muxers, float64(o.HLSMuxers))
	counter(c.segments, float64(o.HLSSegments))
	gauge(c.recorders, float64(o.Recorders))
	counter(c.files, float64(o.RecordFiles))
	counter(c.bytes, float64(o.RecordBytes))
	counter(c.errs, float64(o.RecordErrors))
	counter(c.removed, float64(o.RecordRemoved))
}
