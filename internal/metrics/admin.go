package metrics

import (
	"io"
	"net/http"
	"net/http/pprof"
)

// AdminHandler is the mux for the optional admin listener (admin.listen):
// /metrics, /healthz, /readyz (when ready is not nil) and the net/http/pprof
// profiles under /debug/pprof/. It belongs on a private address only:
// profiles reveal internals and cost CPU.
func AdminHandler(m *Metrics, ready *Readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	if ready != nil {
		mux.Handle("GET /readyz", ready)
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // also serves heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return mux
}
