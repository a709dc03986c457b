package e2e

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/webhook"
)

// startFeed publishes the clip in a loop on stream until the test ends.
func startFeed(t *testing.T, ctx context.Context, base, stream string, opts client.PublishOptions) (*client.Publisher, *feed) {
	t.Helper()
	pub, err := client.Publish(ctx, base+"/whip/"+stream, opts)
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	go f.run(fctx)
	t.Cleanup(func() { stop(); <-f.done; _ = pub.Close() })
	<-f.sentAU(1)
	return pub, f
}

// TestEventsReachWebhook: publish, view, leave, unpublish arrive at a
// webhook in that order, signed; the first delivery fails with 500 and is
// retried.
func TestEventsReachWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []events.Event
	failedOnce := false
	four := make(chan struct{})
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !webhook.Verify("hook-secret", body, r.Header.Get(webhook.SignatureHeader)) {
			t.Errorf("webhook signature %q does not verify", r.Header.Get(webhook.SignatureHeader))
		}
		mu.Lock()
		defer mu.Unlock()
		if !failedOnce {
			failedOnce = true
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		var e events.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("webhook body %q: %v", body, err)
		}
		got = append(got, e)
		if len(got) == 4 {
			close(four)
		}
	}))
	defer hook.Close()

	base := startServer(t, func(c *config.Config) {
		c.Events.Webhooks = []webhook.Config{{URL: hook.URL, Secret: "hook-secret"}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/ev", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	go f.run(fctx)
	v, err := client.View(ctx, base+"/whep/ev", client.ViewOptions{CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = v.Close()
	stop()
	<-f.done
	_ = pub.Close()

	select {
	case <-four:
	case <-ctx.Done():
		mu.Lock()
		t.Fatalf("webhook got %+v, want 4 events", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []events.Kind{events.StreamPublished, events.ViewerJoined, events.ViewerLeft, events.StreamUnpublished}
	for i, k := range want {
		if got[i].Kind != k || got[i].Stream != "ev" || got[i].Session == "" || got[i].Remote == "" {
			t.Errorf("event %d = %+v, want %s on stream ev with session and remote", i, got[i], k)
		}
	}
	if got[0].Session != got[3].Session || got[1].Session != got[2].Session {
		t.Error("published/unpublished or joined/left name different sessions")
	}
}

func getJSON(t *testing.T, url, token string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && v != nil {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", url, ct)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode
}

type apiStream struct {
	Name    string `json:"name"`
	Viewers int    `json:"viewers"`
	Tracks  []struct {
		Kind, Codec string
		DerivedFrom *int `json:"derived_from"` // transcoded (Opus's AAC for LL-HLS)
	} `json:"tracks"`
	Publisher *struct {
		ID, Remote, State string
	} `json:"publisher"`
	Uptime float64 `json:"uptime_seconds"`
}

// kick ends a session through DELETE /v1/sessions/{id} and returns the
// status.
func kick(t *testing.T, base, token, id string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, base+"/v1/sessions/"+id, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitRTPPaths polls GET /v1/sessions for up to 5 s until the WHEP
// sessions counted by rtp_path are want (a viewer's side may see the
// connection up a moment before the server's does); it returns the last
// counts.
func waitRTPPaths(t *testing.T, base, token string, want map[string]int) map[string]int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := viewerRTPPaths(t, base, token)
		if maps.Equal(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// viewerRTPPaths counts the WHEP sessions of the server by rtp_path, as
// GET /v1/sessions reports them.
func viewerRTPPaths(t *testing.T, base, token string) map[string]int {
	t.Helper()
	var sessions struct {
		Sessions []struct {
			Kind    string
			RTPPath string `json:"rtp_path"`
		}
	}
	if code := getJSON(t, base+"/v1/sessions", token, &sessions); code != 200 {
		t.Fatalf("GET /v1/sessions: %d", code)
	}
	n := map[string]int{}
	for _, s := range sessions.Sessions {
		if s.Kind == "whep" {
			n[s.RTPPath]++
		}
	}
	return n
}

// TestJSONAPI: list streams, one stream, sessions, kick; every call needs
// the api action.
func TestJSONAPI(t *testing.T) {
	base := startServer(t, func(c *config.Config) {
		c.Auth = auth.Config{Default: "allow", Rules: []auth.RuleConfig{{
			Actions: []string{"api"}, Mode: "static",
			Tokens: []auth.StaticToken{{Token: "ops-token-0123456789", Actions: []string{"api"}}, {Token: "pub-token-0123456789", Actions: []string{"publish"}}},
		}}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "api", client.PublishOptions{})
	v, err := client.View(ctx, base+"/whep/api", client.ViewOptions{CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	for token, want := range map[string]int{"": 401, "wrong-token-0123456789": 401, "pub-token-0123456789": 403} {
		if code := getJSON(t, base+"/v1/streams", token, nil); code != want {
			t.Errorf("GET /v1/streams with token %q: %d, want %d", token, code, want)
		}
	}
	const ops = "ops-token-0123456789"
	var list struct{ Streams []apiStream }
	if code := getJSON(t, base+"/v1/streams", ops, &list); code != 200 {
		t.Fatalf("GET /v1/streams: %d", code)
	}
	if len(list.Streams) != 1 {
		t.Fatalf("streams = %+v", list.Streams)
	}
	s := list.Streams[0]
	published := 0
	for _, tr := range s.Tracks {
		if tr.DerivedFrom == nil {
			published++
		}
	}
	if s.Name != "api" || s.Viewers != 1 || published != 2 || s.Publisher == nil || !strings.HasPrefix(s.Publisher.Remote, "127.0.0.1:") {
		t.Errorf("stream = %+v", s)
	}
	var one apiStream
	if code := getJSON(t, base+"/v1/streams/api", ops, &one); code != 200 || one.Name != "api" {
		t.Errorf("GET /v1/streams/api: %d %+v", code, one)
	}
	if code := getJSON(t, base+"/v1/streams/nope", ops, nil); code != 404 {
		t.Errorf("GET /v1/streams/nope: %d", code)
	}
	waitRTPPaths(t, base, ops, map[string]int{"direct": 1}) // the server's side of the connection may lag the viewer's
	var sessions struct {
		Sessions []struct {
			ID, Kind, Stream, State string
			RTPPath                 string `json:"rtp_path"`
		}
	}
	if code := getJSON(t, base+"/v1/sessions", ops, &sessions); code != 200 || len(sessions.Sessions) != 2 {
		t.Fatalf("GET /v1/sessions: %d %+v", code, sessions)
	}
	var viewerID string
	for _, ss := range sessions.Sessions {
		want := "direct"
		if ss.Kind == "whep" {
			viewerID = ss.ID
		} else if ss.RTPPath == "pion" {
			want = "pion" // a publisher is detached from pion 0.1 s after its tracks start
		}
		if ss.RTPPath != want {
			t.Errorf("%s session: rtp_path %q, want %q", ss.Kind, ss.RTPPath, want)
		}
	}
	if code := kick(t, base, ops, viewerID); code != 200 {
		t.Fatalf("kick: %d", code)
	}
	select {
	case <-v.Done():
	case <-ctx.Done():
		t.Fatal("kicked viewer still connected")
	}
	if code := kick(t, base, ops, viewerID); code != 404 {
		t.Errorf("second kick: %d, want 404", code)
	}
}

// TestViewerWaitsForPublisher: with stream.wait_for_publisher, a viewer that
// arrives first gets its answer once the publisher is live, starting at a
// keyframe; without it, 404 at once.
func TestViewerWaitsForPublisher(t *testing.T) {
	base := startServer(t, func(c *config.Config) { c.Stream.WaitForPublisher = 10 * time.Second })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	type result struct {
		v   *client.Viewer
		err error
	}
	res := make(chan result, 1)
	go func() {
		v, err := client.View(ctx, base+"/whep/early", client.ViewOptions{})
		res <- result{v, err}
	}()
	time.Sleep(300 * time.Millisecond) // let the viewer arrive first (ordering, not an event wait)
	startFeed(t, ctx, base, "early", client.PublishOptions{})
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.v.Close()
	select {
	case au := <-r.v.AccessUnits():
		if !client.IsIDR(au.NALUs) {
			t.Error("first access unit after waiting is not a keyframe")
		}
	case <-ctx.Done():
		t.Fatal("no video")
	}

	plain := startServer(t, nil)
	start := time.Now()
	_, err := client.View(ctx, plain+"/whep/early", client.ViewOptions{})
	if client.StatusOf(err) != 404 || time.Since(start) > 2*time.Second {
		t.Fatalf("without waiting: %v after %v, want 404 at once", err, time.Since(start))
	}
}
