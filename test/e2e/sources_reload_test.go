package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/config"
)

// sourceList is GET /v1/sources: stream → state.
func sourceList(t *testing.T, base string) map[string]string {
	t.Helper()
	code, _, body := do(t, http.MethodGet, base+"/v1/sources", "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/sources: %d %s", code, body)
	}
	var v struct {
		Sources []struct {
			Stream string `json:"stream"`
			URL    string `json:"url"`
			State  string `json:"state"`
		} `json:"sources"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET /v1/sources: %v: %s", err, body)
	}
	out := map[string]string{}
	for _, s := range v.Sources {
		out[s.Stream] = s.State
	}
	return out
}

// TestSourcesReload: a reload with a new sources list starts the new
// camera (a viewer plays it) and leaves the running one untouched (its
// viewer keeps its session, the camera sees no new DESCRIBE); a reload
// that removes a source stops it; a config that does not validate is
// refused and the sources stay; a changed setting that needs a restart
// does not stop the reload; a new auth section applies at once.
func TestSourcesReload(t *testing.T) {
	camA := startCamera(t, cameraOptions{})
	camB := startCamera(t, cameraOptions{})
	var cfg config.Config
	n := startNode(t, func(c *config.Config) {
		c.Sources = []config.Source{{Stream: "a", URL: camA.url("", ""), Transport: "tcp"}}
		cfg = *c
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	va := viewSource(ctx, t, n.base+"/whep/a", camA, nil)
	readSourceAUs(ctx, t, va, 5, true)

	next := cfg
	next.Sources = append([]config.Source{}, cfg.Sources...)
	next.Sources = append(next.Sources, config.Source{Stream: "b", URL: camB.url("", ""), Transport: "tcp"})
	next.HLS.SegmentCount = 9 // needs a restart: named in the log, not applied
	if err := n.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	vb := viewSource(ctx, t, n.base+"/whep/b", camB, nil)
	readSourceAUs(ctx, t, vb, 5, true)
	readSourceAUs(ctx, t, va, 5, false) // a goes on
	if d := camA.describes.Load(); d != 1 {
		t.Errorf("camera a was asked %d times; an unchanged source must not restart", d)
	}

	bad := next
	bad.Sources = append([]config.Source{}, next.Sources...)
	bad.Sources = append(bad.Sources, config.Source{Stream: "c", URL: "http://192.0.2.1/"})
	if err := n.Reload(bad); err == nil || !strings.Contains(err.Error(), "sources[2].url") {
		t.Errorf("Reload of a bad config: %v, want the sources[2].url error", err)
	}
	if got := sourceList(t, n.base); len(got) != 2 {
		t.Errorf("after a refused reload the sources are %v, want a and b", got)
	}

	next.Sources = next.Sources[1:] // a removed
	if err := n.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	select {
	case <-va.Done():
	case <-ctx.Done():
		t.Fatal("the viewer of the removed source a was not ended")
	}
	if got := sourceList(t, n.base); len(got) != 1 || got["b"] != "connected" {
		t.Errorf("sources %v, want only b, connected", got)
	}

	// The auth section applies too: reads denied from now on.
	next.Auth = auth.Config{Default: auth.ModeDeny}
	if err := n.Reload(next); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	code, _, body := do(t, http.MethodPost, n.base+"/whep/b", "application/sdp", strings.NewReader("v=0\r\n"))
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("WHEP POST after auth became deny: %d %s, want 401 or 403", code, body)
	}
}

// TestSourcesAPI: PUT /v1/sources/{stream} adds a camera (201; a viewer
// plays it), PUT of the same body changes nothing (200, no new
// DESCRIBE), a bad body is 400 with the field's message, DELETE stops it
// (204, then 404); the api action guards them.
func TestSourcesAPI(t *testing.T) {
	cam := startCamera(t, cameraOptions{})
	n := startNode(t, nil, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	put := func(stream, body string) (int, string) {
		code, _, resp := do(t, http.MethodPut, n.base+"/v1/sources/"+stream, "application/json", strings.NewReader(body))
		return code, resp
	}
	if got := sourceList(t, n.base); len(got) != 0 {
		t.Fatalf("sources %v before any, want none", got)
	}
	body := `{"url": "` + cam.url("", "") + `", "transport": "tcp"}`
	if code, resp := put("cam", body); code != http.StatusCreated || !strings.Contains(resp, `"stream": "cam"`) {
		t.Fatalf("PUT: %d %s, want 201 with the source", code, resp)
	}
	v := viewSource(ctx, t, n.base+"/whep/cam", cam, nil)
	readSourceAUs(ctx, t, v, 5, true)
	if code, resp := put("cam", body); code != http.StatusOK {
		t.Errorf("PUT again: %d %s, want 200", code, resp)
	}
	readSourceAUs(ctx, t, v, 5, false)
	if d := cam.describes.Load(); d != 1 {
		t.Errorf("camera asked %d times; the same PUT must not restart it", d)
	}
	for _, tc := range []struct{ stream, body, want string }{
		{"cam2", `{"url": "ftp://192.0.2.1/x"}`, "url: "},
		{"cam2", `{"url": "rtsp://192.0.2.1/x", "transport": "carrier-pigeon"}`, "transport: "},
		{"cam2", `{"url": "rtsp://192.0.2.1/x", "on_demand": "maybe"}`, "on_demand"},
		{"cam2", `not json`, ""},
	} {
		code, resp := put(tc.stream, tc.body)
		if code != http.StatusBadRequest || !strings.Contains(resp, tc.want) {
			t.Errorf("PUT %s: %d %s, want 400 naming %q", tc.body, code, resp, tc.want)
		}
	}
	if got := sourceList(t, n.base); len(got) != 1 {
		t.Errorf("sources %v after bad PUTs, want only cam", got)
	}
	code, _, _ := do(t, http.MethodDelete, n.base+"/v1/sources/cam", "", nil)
	if code != http.StatusNoContent {
		t.Errorf("DELETE: %d, want 204", code)
	}
	select {
	case <-v.Done():
	case <-ctx.Done():
		t.Fatal("the viewer of the deleted source was not ended")
	}
	if code, _, _ := do(t, http.MethodDelete, n.base+"/v1/sources/cam", "", nil); code != http.StatusNotFound {
		t.Errorf("DELETE again: %d, want 404", code)
	}
	if code, _, _ := do(t, http.MethodGet, n.base+"/v1/sources/cam", "", nil); code != http.StatusNotFound {
		t.Errorf("GET of a deleted source: %d, want 404", code)
	}

	// The api action guards them.
	locked := startNode(t, func(c *config.Config) {
		c.Auth.Default = "deny"
	}, nodeOptions{})
	code, _, _ = do(t, http.MethodPut, locked.base+"/v1/sources/cam", "application/json", strings.NewReader(body))
	if code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("PUT without credentials under auth default deny: %d, want 401 or 403", code)
	}
}
