package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, method, path string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndex(t *testing.T) {
	for _, path := range []string{"/", "/index.html"} {
		t.Run(path, func(t *testing.T) {
			resp := get(t, http.MethodGet, path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
				t.Errorf("Content-Type = %q, want text/html", ct)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", cc)
			}
			page := body(t, resp)
			for _, want := range []string{
				`<form id="form">`,
				`<label for="stream">`, `id="stream"`, `value="live"`,
				`<label for="token">`, `id="token"`,
				`value="publish"`, `value="play"`,
				`id="start"`, `id="stop"`, `id="unmute"`,
				`<video id="video" autoplay playsinline muted>`,
				`src="app.js"`, `href="style.css"`,
			} {
				if !strings.Contains(page, want) {
					t.Errorf("page lacks %s", want)
				}
			}
		})
	}
}

func TestAssets(t *testing.T) {
	tests := []struct {
		path, contentType, contains string
	}{
		{"/app.js", "text/javascript; charset=utf-8", "window.sluice"},
		{"/style.css", "text/css; charset=utf-8", "video"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := get(t, http.MethodGet, tt.path, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200", resp.StatusCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tt.contentType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.contentType)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control = %q, want no-cache", cc)
			}
			if b := body(t, resp); !strings.Contains(b, tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	for _, path := range []string{
		"/nope", "/favicon.ico", "/web.go", "/index.htm", "/app.js/",
		"/static/app.js", "/whip/live", "/a/../app.js",
	} {
		t.Run(path, func(t *testing.T) {
			resp := get(t, http.MethodGet, path, nil)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status = %d, want 404", resp.StatusCode)
			}
		})
	}
}

func TestMethods(t *testing.T) {
	resp := get(t, http.MethodHead, "/app.js", nil)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HEAD status = %d, want 200", resp.StatusCode)
	}
	if b := body(t, resp); b != "" {
		t.Errorf("HEAD body = %d bytes, want none", len(b))
	}
	resp = get(t, http.MethodPost, "/", nil)
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST status = %d, want 405", resp.StatusCode)
	}
}

func TestRevalidate(t *testing.T) {
	etag := get(t, http.MethodGet, "/", nil).Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	resp := get(t, http.MethodGet, "/", http.Header{"If-None-Match": {etag}})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("status = %d, want 304", resp.StatusCode)
	}
}

// TestSameOrigin keeps the page free of CDNs and other external URLs: it
// must work on an air-gapped network and under its own CSP.
func TestSameOrigin(t *testing.T) {
	entries, err := files.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		for _, scheme := range []string{"http://", "https://", "//cdn"} {
			if strings.Contains(strings.ToLower(string(b)), scheme) {
				t.Errorf("%s contains %q: everything must be same-origin", e.Name(), scheme)
			}
		}
	}
}
