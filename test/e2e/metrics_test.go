package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// TestMetricsCountRelay relays 2 s of the clip to two viewers and checks
// that /metrics counts it: packets in as the publisher sent them, packets
// out as the viewers received them, one setup per session, session gauges
// back at zero (and packet totals kept) once everything is closed.
func TestMetricsCountRelay(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })

	clip := loadClip(t)
	// No reconnect grace: the publisher's DELETE ends the viewers at once.
	base := startServer(t, func(c *config.Config) { c.Stream.ReconnectGrace = 0 })
	if code, _ := getMetrics(t, base); code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	before := scrapeMetrics(t, base)
	before.want(t, map[string]float64{
		`sluice_sessions{kind="whip",state="connected"}`: 0,
		`sluice_ingest_packets_total`:                    0,
		`sluice_streams`:                                 0,
	})

	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/metered", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pubClosed := false
	defer func() {
		if !pubClosed {
			_ = pub.Close()
		}
	}()
	f := newFeed(pub, clip, 50) // 2 s
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go f.run(feedCtx)
	defer func() { stopFeed(); <-f.done }()

	select {
	case <-f.sentAU(1):
	case <-f.done:
		t.Fatal(f.result())
	}
	viewers := make([]*client.Viewer, 2)
	defer func() {
		for _, v := range viewers {
			if v != nil {
				_ = v.Close()
			}
		}
	}()
	var wg sync.WaitGroup
	errs := make([]error, len(viewers))
	for i := range viewers {
		wg.Go(func() {
			viewers[i], errs[i] = client.View(ctx, base+"/whep/metered", client.ViewOptions{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	// While live: one stream, one publisher and two viewers connected.
	waitMetrics(t, base, "sessions while live", func(s metricSamples) bool {
		return s.get(`sluice_streams`) == 1 &&
			s.get(`sluice_sessions{kind="whip",state="connected"}`) == 1 &&
			s.get(`sluice_sessions{kind="whep",state="connected"}`) == 2
	})

	<-f.done
	sent, opusSent, err := f.result()
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	for i, v := range viewers {
		collect(t, fmt.Sprintf("viewer %d", i), v, sent, opusSent)
	}
	video, audio := pub.SentPackets()
	packetsIn := float64(video + audio)
	var packetsOut float64
	for _, v := range viewers {
		st := v.Stats()
		packetsOut += float64(st.VideoPackets + st.AudioPackets)
	}

	// Loopback loses nothing, so the counts should match exactly; allow a
	// little for a packet still in flight.
	live := waitMetrics(t, base, "packet counts", func(s metricSamples) bool {
		return near(s.get(`sluice_ingest_packets_total`), packetsIn) && near(s.get(`sluice_egress_packets_total`), packetsOut)
	})
	t.Logf("publisher sent %v packets, server counted %v in; viewers received %v, server counted %v out",
		packetsIn, live.get(`sluice_ingest_packets_total`), packetsOut, live.get(`sluice_egress_packets_total`))
	if live.get(`sluice_ingest_bytes_total`) < packetsIn || live.get(`sluice_egress_bytes_total`) < packetsOut {
		t.Errorf("byte counts below one byte per packet: in %v, out %v",
			live.get(`sluice_ingest_bytes_total`), live.get(`sluice_egress_bytes_total`))
	}
	// Receiver reports flow both ways once a second: sluice's to the
	// publisher, the viewers' to sluice.
	if live.get(`sluice_ingest_jitter_seconds_count`) == 0 || live.get(`sluice_egress_jitter_seconds_count`) == 0 {
		t.Errorf("no receiver report counted: ingest jitter count %v, egress jitter count %v",
			live.get(`sluice_ingest_jitter_seconds_count`), live.get(`sluice_egress_jitter_seconds_count`))
	}
	t.Logf("RTCP: %v ingest and %v egress receiver report blocks, %v RTTs (%.1f ms mean), %v PLIs sent, %v received",
		live.get(`sluice_ingest_jitter_seconds_count`), live.get(`sluice_egress_jitter_seconds_count`),
		live.get(`sluice_egress_rtt_seconds_count`),
		1000*live.get(`sluice_egress_rtt_seconds_sum`)/max(1, live.get(`sluice_egress_rtt_seconds_count`)),
		live.get(`sluice_plis_sent_total`), live.get(`sluice_plis_received_total`))
	if lost := live.get(`sluice_ingest_packets_lost_total`) + live.get(`sluice_egress_packets_lost_total`); lost != 0 {
		t.Errorf("%v packets counted lost on loopback", lost)
	}

	pubClosed = true
	if err := pub.Close(); err != nil {
		t.Errorf("publisher DELETE: %v", err)
	}
	for i, v := range viewers {
		waitDone(t, fmt.Sprintf("viewer %d after publisher DELETE", i), v.Done(), 10*time.Second)
		if err := v.Close(); err != nil && client.StatusOf(err) != http.StatusNotFound {
			t.Errorf("viewer %d Close: %v", i, err)
		}
	}

	after := waitMetrics(t, base, "sessions after close", func(s metricSamples) bool {
		return s.get(`sluice_streams`) == 0 &&
			s.get(`sluice_sessions{kind="whip",state="connecting"}`)+s.get(`sluice_sessions{kind="whip",state="connected"}`) == 0 &&
			s.get(`sluice_sessions{kind="whep",state="connecting"}`)+s.get(`sluice_sessions{kind="whep",state="connected"}`) == 0
	})
	after.want(t, map[string]float64{
		`sluice_sessions_created_total{kind="whip"}`:                      1,
		`sluice_sessions_created_total{kind="whep"}`:                      2,
		`sluice_session_setup_seconds_count{kind="whip"}`:                 1,
		`sluice_session_setup_seconds_count{kind="whep"}`:                 2,
		`sluice_ice_failures_total{kind="whip",reason="connect_timeout"}`: 0,
		`sluice_ice_failures_total{kind="whep",reason="ice_failed"}`:      0,
		// Single-node mode: the cluster families exist and stay 0.
		`sluice_cluster_owned_streams`:       0,
		`sluice_cluster_pulls_started_total`: 0,
		`sluice_cluster_redirects_total`:     0,
	})
	// Counters never go down: the ended sessions' packets stay counted.
	for _, name := range []string{`sluice_ingest_packets_total`, `sluice_egress_packets_total`, `sluice_ingest_bytes_total`, `sluice_egress_bytes_total`} {
		if after.get(name) < live.get(name) {
			t.Errorf("%s went down from %v to %v after the sessions closed", name, live.get(name), after.get(name))
		}
	}
}

// near reports whether a counted value matches an expected one within 1%
// or 3 packets.
func near(got, want float64) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= max(3, want/100)
}

// metricSamples is a scrape: value by series, the series written as
// name{label="value",...} with labels sorted by name.
type metricSamples map[string]float64

func (s metricSamples) get(series string) float64 { return s[series] }

func (s metricSamples) want(t testing.TB, exp map[string]float64) {
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
			t.Errorf("%s: not exported", k)
		case got != exp[k]:
			t.Errorf("%s = %v, want %v", k, got, exp[k])
		}
	}
}

// getMetrics GETs /metrics and returns the status and body.
func getMetrics(t testing.TB, base string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// scrapeMetrics GETs /metrics and parses the Prometheus text format.
func scrapeMetrics(t testing.TB, base string) metricSamples {
	t.Helper()
	code, body := getMetrics(t, base)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	out := metricSamples{}
	for line := range strings.Lines(body) {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		series, value, ok := cutLast(line)
		if !ok {
			t.Fatalf("GET /metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("GET /metrics: bad value in %q", line)
		}
		out[canonicalSeries(series)] = v
	}
	return out
}

// cutLast splits a sample line into series and value at the last space
// (label values here never hold spaces).
func cutLast(line string) (string, string, bool) {
	i := strings.LastIndexByte(line, ' ')
	if i < 0 {
		return "", "", false
	}
	return line[:i], line[i+1:], true
}

// canonicalSeries sorts a series' labels by name: name{b="1",a="2"}
// becomes name{a="2",b="1"}.
func canonicalSeries(s string) string {
	name, labels, ok := strings.Cut(s, "{")
	if !ok {
		return s
	}
	labels = strings.TrimSuffix(labels, "}")
	var parts []string
	for labels != "" {
		// key="value" with \" escapes inside value.
		eq := strings.Index(labels, `="`)
		if eq < 0 {
			break
		}
		j := eq + 2
		for j < len(labels) && labels[j] != '"' {
			if labels[j] == '\\' {
				j++
			}
			j++
		}
		parts = append(parts, labels[:j+1])
		labels = strings.TrimPrefix(labels[min(j+1, len(labels)):], ",")
	}
	sort.Strings(parts)
	return name + "{" + strings.Join(parts, ",") + "}"
}

// waitMetrics scrapes until ok holds or 10 s pass, and returns the last
// scrape.
func waitMetrics(t testing.TB, base, what string, ok func(metricSamples) bool) metricSamples {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := scrapeMetrics(t, base)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			var lines []string
			for k, v := range s {
				if strings.HasPrefix(k, "sluice_") && !strings.Contains(k, "_bucket") {
					lines = append(lines, fmt.Sprintf("%s %v", k, v))
				}
			}
			sort.Strings(lines)
			t.Fatalf("%s: not as expected after 10 s; last scrape:\n%s", what, strings.Join(lines, "\n"))
			return s
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
