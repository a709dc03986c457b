package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	dto "github.com/prometheus/client_model/go"
)

// sample is one scraped value: a counter, gauge or untyped value, or a
// histogram's count (name_count) and sum (name_sum).
type samples map[string]float64

// scrape gathers m and returns every sample keyed as name{k="v",...} with
// the labels sorted, the form the tests compare against.
func scrape(t testing.TB, m *Metrics) samples {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := samples{}
	for _, f := range fams {
		for _, mt := range f.GetMetric() {
			key := func(suffix string) string {
				var ls []string
				for _, l := range mt.GetLabel() {
					ls = append(ls, l.GetName()+`="`+l.GetValue()+`"`)
				}
				sort.Strings(ls)
				if len(ls) == 0 {
					return f.GetName() + suffix
				}
				return f.GetName() + suffix + "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key("")] = mt.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key("")] = mt.GetGauge().GetValue()
			case dto.MetricType_UNTYPED:
				out[key("")] = mt.GetUntyped().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key("_count")] = float64(mt.GetHistogram().GetSampleCount())
				out[key("_sum")] = mt.GetHistogram().GetSampleSum()
			}
		}
	}
	return out
}

// want checks samples against expected values; a missing sample fails.
func (s samples) want(t testing.TB, exp map[string]float64) {
	t.Helper()
	keys := make([]string, 0, len(exp))
	for k := range exp {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		got, ok := s[k]
		switch {
		case !ok:
			t.Errorf("%s: missing", k)
		case got != exp[k]:
			t.Errorf("%s = %v, want %v", k, got, exp[k])
		}
	}
}

// fakeFlow is a packet counter like hub.Stream's.
type fakeFlow struct{ packets, bytes atomic.Uint64 }

func (f *fakeFlow) add(n int)              { f.packets.Add(1); f.bytes.Add(uint64(n)) }
func (f *fakeFlow) read() (uint64, uint64) { return f.packets.Load(), f.bytes.Load() }

func TestSessionLifecycle(t *testing.T) {
	m := New(Config{})
	s := scrape(t, m)
	// Every family exists from the start, at zero.
	s.want(t, map[string]float64{
		`sluice_sessions{kind="whip",state="connecting"}`:                 0,
		`sluice_sessions{kind="whep",state="connected"}`:                  0,
		`sluice_sessions_created_total{kind="whip"}`:                      0,
		`sluice_session_setup_seconds_count{kind="whep"}`:                 0,
		`sluice_ice_failures_total{kind="whip",reason="connect_timeout"}`: 0,
		`sluice_ingest_packets_total`:                                     0,
		`sluice_egress_bytes_total`:                                       0,
		`sluice_streams`:                                                  0,
		`sluice_ingest_packets_late_total`:                                0,
		`sluice_webhook_queue_dropped_total`:                              0,
		`sluice_transcoder_lag_seconds`:                                   0,
		`sluice_build_info{goversion="` + s.buildLabel(t, "goversion") + `",revision="` + s.buildLabel(t, "revision") + `",version="` + s.buildLabel(t, "version") + `"}`: 1,
	})

	var in, out fakeFlow
	p := m.Publisher("live", time.Now().Add(-300*time.Millisecond))
	p.Negotiated(in.read)
	v := m.Viewer("live", time.Now().Add(-100*time.Millisecond))
	v.Negotiated(out.read)
	scrape(t, m).want(t, map[string]float64{
		`sluice_sessions{kind="whip",state="connecting"}`: 1,
		`sluice_sessions{kind="whep",state="connecting"}`: 1,
		`sluice_sessions_created_total{kind="whip"}`:      1,
		`sluice_sessions_created_total{kind="whep"}`:      1,
		`sluice_streams`: 1,
	})

	p.Connected()
	v.Connected()
	v.Connected() // once only
	for range 10 {
		in.add(100)
	}
	for range 7 {
		out.add(100)
	}
	s = scrape(t, m)
	s.want(t, map[string]float64{
		`sluice_sessions{kind="whip",state="connecting"}`: 0,
		`sluice_sessions{kind="whip",state="connected"}`:  1,
		`sluice_sessions{kind="whep",state="connected"}`:  1,
		`sluice_session_setup_seconds_count{kind="whip"}`: 1,
		`sluice_session_setup_seconds_count{kind="whep"}`: 1,
		`sluice_ingest_packets_total`:                     10,
		`sluice_ingest_bytes_total`:                       1000,
		`sluice_egress_packets_total`:                     7,
		`sluice_egress_bytes_total`:                       700,
	})
	if d := s[`sluice_session_setup_seconds_sum{kind="whip"}`]; d < 0.3 || d > 5 {
		t.Errorf("publisher setup = %v s, want about 0.3", d)
	}

	// Packets counted up to Close stay in the totals after it.
	out.add(50)
	v.Close(FailICE)
	v.Close(FailICE) // once only
	out.add(1000)    // after Close: not counted
	p.Close("")
	scrape(t, m).want(t, map[string]float64{
		`sluice_sessions{kind="whip",state="connected"}`:             0,
		`sluice_sessions{kind="whep",state="connected"}`:             0,
		`sluice_ice_failures_total{kind="whep",reason="ice_failed"}`: 1,
		`sluice_ice_failures_total{kind="whip",reason="ice_failed"}`: 0,
		`sluice_egress_packets_total`:                                8,
		`sluice_egress_bytes_total`:                                  750,
		`sluice_ingest_packets_total`:                                10,
		`sluice_streams`:                                             0,
	})
}

// buildLabel returns a label of sluice_build_info, which depends on how the
// test binary was built.
func (s samples) buildLabel(t testing.TB, name string) string {
	t.Helper()
	for k := range s {
		if !strings.HasPrefix(k, "sluice_build_info{") {
			continue
		}
		_, rest, _ := strings.Cut(strings.Replace(k, "{", ",", 1), ","+name+`="`)
		v, _, _ := strings.Cut(rest, `"`)
		return v
	}
	t.Fatal("no sluice_build_info")
	return ""
}

func TestSessionThatNeverConnects(t *testing.T) {
	m := New(Config{})
	// Refused before negotiation: nothing counted.
	m.Publisher("x", time.Now()).Close(FailConnectTimeout)
	// Answered, then the connect timeout.
	v := m.Viewer("x", time.Now())
	v.Negotiated(nil)
	v.Close(FailConnectTimeout)
	scrape(t, m).want(t, map[string]float64{
		`sluice_sessions_created_total{kind="whip"}`:                      0,
		`sluice_ice_failures_total{kind="whip",reason="connect_timeout"}`: 0,
		`sluice_sessions_created_total{kind="whep"}`:                      1,
		`sluice_sessions{kind="whep",state="connecting"}`:                 0,
		`sluice_session_setup_seconds_count{kind="whep"}`:                 0,
		`sluice_ice_failures_total{kind="whep",reason="connect_timeout"}`: 1,
	})
}

func TestPerStreamLabels(t *testing.T) {
	m := New(Config{PerStreamLabels: true})
	var a, b fakeFlow
	pa := m.Publisher("a", time.Now())
	pa.Negotiated(a.read)
	pb := m.Publisher("b", time.Now())
	pb.Negotiated(b.read)
	va := m.Viewer("a", time.Now())
	va.Negotiated(nil)
	a.add(10)
	b.add(20)
	b.add(20)
	pa.Late.Inc()
	pb.Duplicated.Add(2)
	pb.Unrecovered.Add(5)
	scrape(t, m).want(t, map[string]float64{
		`sluice_ingest_packets_total{stream="a"}`:             1,
		`sluice_ingest_bytes_total{stream="b"}`:               40,
		`sluice_ingest_packets_late_total{stream="a"}`:        1,
		`sluice_ingest_packets_duplicated_total{stream="b"}`:  2,
		`sluice_ingest_packets_unrecovered_total{stream="b"}`: 5,
		`sluice_streams`: 2,
	})

	// The publisher of a leaves but its viewer stays: a's series stay,
	// with the publisher's packets.
	pa.Close("")
	scrape(t, m).want(t, map[string]float64{`sluice_ingest_packets_total{stream="a"}`: 1, `sluice_streams`: 1})

	// The last session of a stream takes its series with it.
	va.Close("")
	for k := range scrape(t, m) {
		if strings.Contains(k, `stream="a"`) {
			t.Errorf("%s still exported after stream a ended", k)
		}
	}
	pb.Close("")
	for k := range scrape(t, m) {
		if strings.Contains(k, `stream=`) {
			t.Errorf("%s still exported after every stream ended", k)
		}
	}
}

func TestNoStreamLabelByDefault(t *testing.T) {
	m := New(Config{})
	p := m.Publisher("secret-name", time.Now())
	p.Negotiated(nil)
	defer p.Close("")
	for k := range scrape(t, m) {
		if strings.Contains(k, "stream=") || strings.Contains(k, "secret-name") {
			t.Errorf("%s: stream label without per-stream labels", k)
		}
	}
}

func TestPublisherRTCP(t *testing.T) {
	m := New(Config{})
	p := m.Publisher("s", time.Now())
	defer p.Close("")
	p.RemoteTrack(1111, 90000)
	rr := func(lost, jitter uint32) *rtcp.ReceiverReport {
		return &rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{
			{SSRC: 1111, TotalLost: lost, Jitter: jitter},
			{SSRC: 2222, TotalLost: 1}, // clock rate unknown: loss only
		}}
	}
	p.SentRTCP([]rtcp.Packet{rr(5, 900)})
	p.SentRTCP([]rtcp.Packet{rr(8, 1800), &rtcp.PictureLossIndication{MediaSSRC: 1111}})
	p.SentRTCP([]rtcp.Packet{rr(7, 0)})        // a duplicate lowered the cumulative loss: nothing to add
	p.SentRTCP([]rtcp.Packet{rr(0xFFFFFF, 0)}) // -1 in 24 bits: nothing to add
	p.SentRTCP([]rtcp.Packet{
		// 3 + 1 packets: PacketID plus the bits of the bitmask.
		&rtcp.TransportLayerNack{MediaSSRC: 1111, Nacks: []rtcp.NackPair{{PacketID: 10, LostPackets: 0b101}, {PacketID: 40}}},
		&rtcp.FullIntraRequest{FIR: []rtcp.FIREntry{{SSRC: 1111}}},
		&rtcp.TransportLayerCC{},
	})
	s := scrape(t, m)
	s.want(t, map[string]float64{
		`sluice_ingest_packets_lost_total`:   9, // 8 on 1111, 1 on 2222
		`sluice_nacks_sent_total`:            4,
		`sluice_plis_sent_total`:             2,
		`sluice_ingest_jitter_seconds_count`: 4,
	})
	if got, want := s[`sluice_ingest_jitter_seconds_sum`], (900+1800)/90000.0; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("jitter sum = %v s, want %v", got, want)
	}
}

func TestViewerRTCP(t *testing.T) {
	m := New(Config{})
	v := m.Viewer("s", time.Now())
	defer v.Close("")
	const video, audio = 7, 9
	now := time.Now()
	// The viewer got our SR 150 ms ago and held it 50 ms: RTT 100 ms.
	lsr := compactNTP(now.Add(-150 * time.Millisecond))
	dlsr := uint32(50 * 65536 / 1000)
	compound := []rtcp.Packet{
		&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{
			{SSRC: video, TotalLost: 3, Jitter: 4500, LastSenderReport: lsr, Delay: dlsr},
			{SSRC: audio, TotalLost: 1, Jitter: 480},
		}},
		&rtcp.PictureLossIndication{MediaSSRC: video},
		&rtcp.TransportLayerNack{MediaSSRC: video, Nacks: []rtcp.NackPair{{PacketID: 1, LostPackets: 1}}},
	}
	// A compound packet reaches every sender it names: each counts its own.
	v.ReceivedRTCP(compound, video, 90000)
	v.ReceivedRTCP(compound, audio, 48000)
	s := scrape(t, m)
	s.want(t, map[string]float64{
		`sluice_egress_packets_lost_total`:   4,
		`sluice_plis_received_total`:         1,
		`sluice_nacks_received_total`:        2,
		`sluice_egress_jitter_seconds_count`: 2,
		`sluice_egress_rtt_seconds_count`:    1,
	})
	if got, want := s[`sluice_egress_jitter_seconds_sum`], 4500/90000.0+480/48000.0; got < want-1e-9 || got > want+1e-9 {
		t.Errorf("jitter sum = %v s, want %v", got, want)
	}
	if rtt := s[`sluice_egress_rtt_seconds_sum`]; rtt < 0.095 || rtt > 0.5 {
		t.Errorf("RTT = %v s, want about 0.1", rtt)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name           string
		now, lsr, dlsr uint32
		want           time.Duration
		ok             bool
	}{
		{"no SR yet", 1 << 16, 0, 0, 0, false},
		{"one second", 10 << 16, 8 << 16, 1 << 16, time.Second, true},
		{"wraps", 1 << 15, 0xFFFF0000, 1 << 15, time.Second, true},
		{"negative", 10 << 16, 10 << 16, 1 << 16, 0, false},
		{"too long", 100 << 16, 1 << 16, 0, 0, false},
	} {
		got, ok := roundTrip(c.now, c.lsr, c.dlsr)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: roundTrip = %v, %v; want %v, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	// compactNTP: 1970 is 2208988800 s after 1900; the low 16 bits of
	// that, and half a second as fraction.
	if got, want := compactNTP(time.Unix(0, 5e8)), uint32((2208988800&0xFFFF)<<16|0x8000); got != want {
		t.Errorf("compactNTP = %#x, want %#x", got, want)
	}
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	p := m.Publisher("x", time.Now())
	p.Negotiated(nil)
	p.Late.Inc()
	p.SentRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{}})
	p.Close("")
	v := m.Viewer("x", time.Now())
	v.Close("")
	m.TranscoderLag("x").Close()
	m.OfferRejected(KindWHIP, 400)
}

func TestTranscoderLag(t *testing.T) {
	m := New(Config{})
	a, b := m.TranscoderLag("a"), m.TranscoderLag("b")
	a.Set(200 * time.Millisecond)
	b.Set(500 * time.Millisecond)
	scrape(t, m).want(t, map[string]float64{`sluice_transcoder_lag_seconds`: 0.5})
	b.Close()
	scrape(t, m).want(t, map[string]float64{`sluice_transcoder_lag_seconds`: 0.2})
	a.Close()
	scrape(t, m).want(t, map[string]float64{`sluice_transcoder_lag_seconds`: 0})

	m = New(Config{PerStreamLabels: true})
	a = m.TranscoderLag("a")
	a.Set(time.Second)
	scrape(t, m).want(t, map[string]float64{`sluice_transcoder_lag_seconds{stream="a"}`: 1})
	a.Close()
	if _, ok := scrape(t, m)[`sluice_transcoder_lag_seconds{stream="a"}`]; ok {
		t.Error("lag of a closed transcoder still exported")
	}
}

type fakeHook struct{ d, f, x uint64 }

func (h fakeHook) Delivered() uint64 { return h.d }
func (h fakeHook) Failed() uint64    { return h.f }
func (h fakeHook) Dropped() uint64   { return h.x }

func TestWebhooksAndRejections(t *testing.T) {
	m := New(Config{})
	m.AddWebhook(fakeHook{5, 1, 2})
	m.AddWebhook(fakeHook{1, 0, 3})
	m.OfferRejected(KindWHEP, 404)
	m.OfferRejected(KindWHEP, 404)
	m.OfferRejected(KindWHIP, 503)
	scrape(t, m).want(t, map[string]float64{
		`sluice_webhook_delivered_total`:                         6,
		`sluice_webhook_failed_total`:                            1,
		`sluice_webhook_queue_dropped_total`:                     5,
		`sluice_offers_rejected_total{kind="whep",status="404"}`: 2,
		`sluice_offers_rejected_total{kind="whip",status="503"}`: 1,
	})
}

// TestConcurrentScrape runs under -race: sessions come and go and count
// while scrapes run; the packet totals never go down.
func TestConcurrentScrape(t *testing.T) {
	m := New(Config{PerStreamLabels: false})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var f fakeFlow
				v := m.Viewer("s", time.Now())
				v.Negotiated(f.read)
				v.Connected()
				for range 100 {
					f.add(i)
				}
				v.ReceivedRTCP([]rtcp.Packet{&rtcp.ReceiverReport{Reports: []rtcp.ReceptionReport{{SSRC: 1, TotalLost: 1}}}}, 1, 90000)
				v.Close("")
			}
		})
	}
	last := 0.0
	for range 40 {
		got := scrape(t, m)[`sluice_egress_packets_total`]
		if got < last {
			t.Fatalf("sluice_egress_packets_total went down: %v after %v", got, last)
		}
		last = got
	}
	close(stop)
	wg.Wait()
	s := scrape(t, m)
	if got := s[`sluice_egress_packets_total`]; got != s[`sluice_sessions_created_total{kind="whep"}`]*100 {
		t.Errorf("egress packets = %v, want 100 per session (%v sessions)", got, s[`sluice_sessions_created_total{kind="whep"}`])
	}
}

func TestReadiness(t *testing.T) {
	r := NewReadiness()
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != 503 || body != "not ready: starting\n" {
		t.Errorf("new: %d %q", code, body)
	}
	r.SetReady()
	if code, body := get(); code != 200 || body != "ready\n" {
		t.Errorf("ready: %d %q", code, body)
	}
	r.SetNotReady("shutting down")
	if code, body := get(); code != 503 || body != "not ready: shutting down\n" {
		t.Errorf("shutting down: %d %q", code, body)
	}
}

func TestAdminHandler(t *testing.T) {
	m := New(Config{})
	r := NewReadiness()
	r.SetReady()
	srv := httptest.NewServer(AdminHandler(m, r))
	defer srv.Close()
	for _, c := range []struct {
		path string
		code int
		has  string
	}{
		{"/metrics", 200, "sluice_sessions{"},
		{"/metrics", 200, "go_goroutines"},
		{"/metrics", 200, "process_"},
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/debug/pprof/", 200, "goroutine"},
		{"/debug/pprof/goroutine?debug=1", 200, "goroutine"},
		{"/debug/pprof/cmdline", 200, ""},
		{"/nope", 404, ""},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.code || !strings.Contains(string(body), c.has) {
			t.Errorf("GET %s: %d, body has %q: %v", c.path, resp.StatusCode, c.has, strings.Contains(string(body), c.has))
		}
	}
}

// BenchmarkScrape measures a scrape with 1000 viewers and 10 streams.
func BenchmarkScrape(b *testing.B) {
	for _, perStream := range []bool{false, true} {
		name := "labels=off"
		if perStream {
			name = "labels=on"
		}
		b.Run(name, func(b *testing.B) {
			m := New(Config{PerStreamLabels: perStream})
			var f fakeFlow
			var vs []*Viewer
			for i := range 1000 {
				v := m.Viewer(string(rune('a'+i%10)), time.Now())
				v.Negotiated(f.read)
				vs = append(vs, v)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.Gatherer().Gather(); err != nil {
					b.Fatal(err)
				}
			}
			for _, v := range vs {
				v.Close("")
			}
		})
	}
}

// TestOutputs: the output families read 0 until the server sets their
// source, then what it reports, at every scrape.
func TestOutputs(t *testing.T) {
	m := New(Config{})
	names := []string{`sluice_transcoders{from="opus",to="aac"}`, `sluice_transcoders{from="aac",to="opus"}`, "sluice_transcoded_audio_seconds_total", "sluice_transcode_errors_total",
		"sluice_hls_muxers", "sluice_hls_segments_total", "sluice_recorders", "sluice_record_files_total",
		"sluice_record_bytes_total", "sluice_record_errors_total", "sluice_record_files_removed_total"}
	zero := map[string]float64{}
	for _, n := range names {
		zero[n] = 0
	}
	scrape(t, m).want(t, zero)
	o := Outputs{Transcoders: 1, TranscodersBy: map[[2]string]int{{"aac", "opus"}: 2}, TranscodedAudio: 2.5, TranscodeErrors: 3, HLSMuxers: 4, HLSSegments: 5,
		Recorders: 6, RecordFiles: 7, RecordBytes: 8, RecordErrors: 9, RecordRemoved: 10}
	m.SetOutputs(func() Outputs { return o })
	scrape(t, m).want(t, map[string]float64{
		`sluice_transcoders{from="opus",to="aac"}`: 1, `sluice_transcoders{from="aac",to="opus"}`: 2, "sluice_transcoded_audio_seconds_total": 2.5, "sluice_transcode_errors_total": 3,
		"sluice_hls_muxers": 4, "sluice_hls_segments_total": 5, "sluice_recorders": 6, "sluice_record_files_total": 7,
		"sluice_record_bytes_total": 8, "sluice_record_errors_total": 9, "sluice_record_files_removed_total": 10,
	})
	o.HLSMuxers, o.RecordFiles = 0, 11
	scrape(t, m).want(t, map[string]float64{"sluice_hls_muxers": 0, "sluice_record_files_total": 11})
}

// TestCluster: the cluster families read 0 until the server sets their
// source (single-node mode never does), then what it reports, the pull
// failures under their reason label; a nil *Metrics takes a source too.
func TestCluster(t *testing.T) {
	var nilMetrics *Metrics
	nilMetrics.SetCluster(func() Cluster { return Cluster{} })

	m := New(Config{})
	zero := map[string]float64{
		"sluice_cluster_owned_streams": 0, "sluice_cluster_edge_pulls": 0, "sluice_cluster_pulls_started_total": 0,
		`sluice_cluster_pull_failures_total{reason="registry"}`:   0,
		`sluice_cluster_pull_failures_total{reason="dial"}`:       0,
		`sluice_cluster_pull_failures_total{reason="hub"}`:        0,
		`sluice_cluster_pull_failures_total{reason="connection"}`: 0,
		"sluice_cluster_owner_moves_total":                        0, "sluice_cluster_redirects_total": 0, "sluice_cluster_full_total": 0,
		"sluice_cluster_lease_renewals_failed_total": 0, "sluice_cluster_leases_lost_total": 0,
	}
	scrape(t, m).want(t, zero)
	c := Cluster{OwnedStreams: 1, EdgePulls: 2, PullsStarted: 3, PullFailsRegistry: 4, PullFailsDial: 5,
		PullFailsHub: 6, PullFailsConnection: 7, OwnerMoves: 8, Redirects: 9, Full: 10,
		LeaseRenewalsFailed: 11, LeasesLost: 12}
	m.SetCluster(func() Cluster { return c })
	scrape(t, m).want(t, map[string]float64{
		"sluice_cluster_owned_streams": 1, "sluice_cluster_edge_pulls": 2, "sluice_cluster_pulls_started_total": 3,
		`sluice_cluster_pull_failures_total{reason="registry"}`:   4,
		`sluice_cluster_pull_failures_total{reason="dial"}`:       5,
		`sluice_cluster_pull_failures_total{reason="hub"}`:        6,
		`sluice_cluster_pull_failures_total{reason="connection"}`: 7,
		"sluice_cluster_owner_moves_total":                        8, "sluice_cluster_redirects_total": 9, "sluice_cluster_full_total": 10,
		"sluice_cluster_lease_renewals_failed_total": 11, "sluice_cluster_leases_lost_total": 12,
	})
	c.EdgePulls, c.Redirects = 0, 13
	scrape(t, m).want(t, map[string]float64{"sluice_cluster_edge_pulls": 0, "sluice_cluster_redirects_total": 13})
}
