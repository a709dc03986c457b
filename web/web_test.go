package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"
	"slices"
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
				`<select id="source"`, `value="camera"`, `value="screen"`, `id="audio"`,
				`<select id="codec"`, `value="h264"`, `value="vp8"`, `id="bitrate"`,
				`id="start"`, `id="stop"`, `id="unmute"`,
				`<video id="video" autoplay playsinline muted>`, `id="stats"`,
				`<script type="module" src="app.js">`, `href="style.css"`, `href="multi.html"`,
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
		{"/client.js", "text/javascript; charset=utf-8", "export class Player"},
		{"/multi.js", "text/javascript; charset=utf-8", "window.sluice"},
		{"/multi.html", "text/html; charset=utf-8", `<script type="module" src="multi.js">`},
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
		"/static/app.js", "/whip/live", "/a/../app.js", "/multi", "/web_test.go",
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
		if e.IsDir() {
			continue // vendor/: third-party code, with URLs in its comments
		}
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

// TestPaths checks that the router's list names every embedded file, and
// only those.
func TestPaths(t *testing.T) {
	paths := Paths()
	if len(paths) == 0 || paths[0] != "/{$}" {
		t.Fatalf("Paths() = %q, want /{$} first", paths)
	}
	var names []string
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && name != "vendor/README.md" {
			names = append(names, name)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// /{$} and /console are the pages index.html and console.html again.
	if len(paths) != len(names)+2 || !slices.Contains(paths, "/console") {
		t.Errorf("Paths() = %q for %d embedded files", paths, len(names))
	}
	for _, n := range names {
		if !slices.Contains(paths, "/"+n) {
			t.Errorf("Paths() lacks /%s", n)
		}
	}
	for _, p := range paths[1:] {
		if resp := get(t, http.MethodGet, p, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status = %d, want 200", p, resp.StatusCode)
		}
	}
}

// TestCSP checks what the pages' Content-Security-Policy (default-src
// 'self') needs: every page sends it, and no page has inline script, event
// handler attributes or style attributes, which it would block.
func TestCSP(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<script[^>]*>[^<]*\S[^<]*</script>`), // a script with a body
		regexp.MustCompile(`\son[a-z]+\s*=`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	scriptTag := regexp.MustCompile(`<script[^>]*>`)
	for _, p := range Paths() {
		if !strings.HasSuffix(p, ".html") {
			continue
		}
		resp := get(t, http.MethodGet, p, nil)
		if csp := resp.Header.Get("Content-Security-Policy"); csp != contentSecurityPolicy {
			t.Errorf("%s: Content-Security-Policy = %q, want %q", p, csp, contentSecurityPolicy)
		}
		page := body(t, resp)
		for _, re := range inline {
			if m := re.FindString(page); m != "" {
				t.Errorf("%s has %q, which the CSP blocks", p, m)
			}
		}
		for _, tag := range scriptTag.FindAllString(page, -1) {
			if !strings.Contains(tag, ` src="`) {
				t.Errorf("%s has %q: inline scripts are blocked by the CSP", p, tag)
			}
		}
	}
	if csp := get(t, http.MethodGet, "/", nil).Header.Get("Content-Security-Policy"); csp == "" {
		t.Error("/: no Content-Security-Policy")
	}
}

// TestReferences checks that every file a page or module loads is served:
// src and href attributes, and ES module imports.
func TestReferences(t *testing.T) {
	refs := []*regexp.Regexp{
		regexp.MustCompile(`(?:src|href)="([^"]+)"`),
		regexp.MustCompile(`(?m)^import .* from '([^']+)';`),
	}
	for _, p := range Paths()[1:] {
		if strings.HasPrefix(p, "/vendor/") {
			continue // third-party, loaded by hlsplayer.js
		}
		b := body(t, get(t, http.MethodGet, p, nil))
		for _, re := range refs {
			for _, m := range re.FindAllStringSubmatch(b, -1) {
				ref := m[1]
				if strings.HasPrefix(ref, "data:") {
					continue
				}
				target := path.Join(path.Dir(p), ref)
				if resp := get(t, http.MethodGet, target, nil); resp.StatusCode != http.StatusOK {
					t.Errorf("%s loads %q: GET %s answers %d", p, ref, target, resp.StatusCode)
				}
			}
		}
	}
}

// TestVendor: hls.js is served as a JavaScript module when
// scripts/web-deps.sh installed it before the build, and is simply absent
// otherwise (the page then falls back; see hlsplayer.js). The vendor
// README is documentation, not served.
func TestVendor(t *testing.T) {
	if resp := get(t, http.MethodGet, "/vendor/README.md", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /vendor/README.md: %d, want 404", resp.StatusCode)
	}
	_, err := files.ReadFile("vendor/hls.min.mjs")
	resp := get(t, http.MethodGet, "/vendor/hls.min.mjs", nil)
	if err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_HLSJS") != "" {
			t.Fatal("hls.js not embedded (run scripts/web-deps.sh before building)")
		}
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /vendor/hls.min.mjs without hls.js: %d, want 404", resp.StatusCode)
		}
		t.Skip("hls.js not embedded: scripts/web-deps.sh did not run before this build")
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Errorf("GET /vendor/hls.min.mjs: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if b := body(t, get(t, http.MethodGet, "/vendor/hls.js.LICENSE.txt", nil)); !strings.Contains(b, "Apache License") {
		t.Errorf("hls.js licence not served with it")
	}
}
