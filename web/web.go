// Package web serves the embedded pages: index.html (publish or play one
// stream, over WHEP or LL-HLS), multi.html (several streams at once),
// console.html (also at /console: what is live, and the recordings) and
// their scripts and style. Every file is plain HTML, ES modules and CSS with
// no build step and no external URL, served under a same-origin
// Content-Security-Policy. Third-party code (hls.js) is whatever
// scripts/web-deps.sh put in vendor/ before the build (see
// vendor/README.md); the pages cope without it.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"time"
)

//go:embed *.html *.js *.css vendor
var files embed.FS

// asset is one embedded file ready to serve.
type asset struct {
	name        string
	contentType string
	etag        string
	body        []byte
}

// contentTypes are the types of the file kinds that go:embed takes above.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".mjs":  "text/javascript; charset=utf-8",
	".txt":  "text/plain; charset=utf-8",
}

// assets maps request paths to files: "/" is index.html, every embedded file
// is served by its name. Everything else is 404: the handler may be mounted
// at "GET /" and so also see paths that belong to nobody.
var assets = loadAll()

func loadAll() map[string]*asset {
	out := make(map[string]*asset)
	err := fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || name == "vendor/README.md" {
			return err
		}
		out["/"+name] = load(name)
		return nil
	})
	if err != nil {
		panic("web: " + err.Error())
	}
	out["/"] = out["/index.html"]
	out["/console"] = out["/console.html"]
	return out
}

func load(name string) *asset {
	body, err := files.ReadFile(name)
	if err != nil {
		panic("web: " + err.Error()) // name comes from the embedded FS
	}
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		panic("web: no content type for " + name)
	}
	sum := sha256.Sum256(body)
	return &asset{
		name:        name,
		contentType: ct,
		etag:        `"` + hex.EncodeToString(sum[:8]) + `"`,
		body:        body,
	}
}

// Paths returns the http.ServeMux path patterns this handler serves, for a
// router that mounts each with "GET ": "/{$}" for the page at "/", then
// "/index.html", "/app.js", … in name order.
func Paths() []string {
	out := []string{"/{$}"}
	for p := range assets {
		if p != "/" {
			out = append(out, p)
		}
	}
	sort.Strings(out[1:])
	return out
}

// contentSecurityPolicy keeps the pages same-origin: no CDNs, no inline
// script. media-src allows blob: for hls.js, which plays through a
// MediaSource object URL.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:"

// Handler serves the page at / and every embedded file by its name.
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
	if path.Ext(a.name) == ".html" {
		h.Set("Content-Security-Policy", contentSecurityPolicy)
	}
	// ServeContent answers HEAD, If-None-Match and Range.
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}
