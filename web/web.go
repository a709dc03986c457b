// Package web serves the embedded publish/play page.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"time"
)

//go:embed index.html app.js style.css
var files embed.FS

// asset is one embedded file ready to serve.
type asset struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// assets maps request paths to files. Everything else is 404: the handler
// is mounted at "GET /" and so also sees paths that belong to nobody.
var assets = map[string]*asset{
	"/":           load("index.html", "text/html; charset=utf-8"),
	"/index.html": load("index.html", "text/html; charset=utf-8"),
	"/app.js":     load("app.js", "text/javascript; charset=utf-8"),
	"/style.css":  load("style.css", "text/css; charset=utf-8"),
}

func load(name, contentType string) *asset {
	body, err := files.ReadFile(name)
	if err != nil {
		panic("web: " + err.Error()) // the go:embed line above lists name
	}
	sum := sha256.Sum256(body)
	return &asset{
		name:        name,
		contentType: contentType,
		etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		body:        body,
	}
}

// contentSecurityPolicy keeps the page same-origin: no CDNs, no inline script.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:"

// Handler serves the page at / and /index.html and its assets by name.
// Responses carry Cache-Control: no-cache with an ETag, so browsers
// revalidate cheaply and never run a stale script after an upgrade.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	a, ok := assets[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	if a.name == "index.html" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	// ServeContent answers HEAD, If-None-Match and Range.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
