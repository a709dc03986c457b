package metrics

import (
	"io"
	"net/http"
	"sync"
)

// Readiness answers /readyz: 200 "ready" while the server accepts sessions,
// 503 "not ready: <reason>" while it starts or shuts down, so that a load
// balancer or Kubernetes stops sending it new sessions first. /healthz
// (liveness) stays 200 throughout.
type Readiness struct {
	mu     sync.Mutex
	reason string // "" when ready
}

// NewReadiness returns a Readiness that is not ready yet ("starting").
func NewReadiness() *Readiness { return &Readiness{reason: "starting"} }

// SetReady marks the server ready (all listeners up).
func (r *Readiness) SetReady() { r.set("") }

// SetNotReady marks the server not ready, saying why ("shutting down").
func (r *Readiness) SetNotReady(reason string) {
	if reason == "" {
		reason = "unspecified"
	}
	r.set(reason)
}

func (r *Readiness) set(reason string) {
	r.mu.Lock()
	r.reason = reason
	r.mu.Unlock()
}

// Ready reports whether the server is ready and, if not, why.
func (r *Readiness) Ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason == "", r.reason
}

// ServeHTTP implements http.Handler for GET (and HEAD) /readyz.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	ok, reason := r.Ready()
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+reason+"\n")
		return
	}
	_, _ = io.WriteString(w, "ready\n")
}
