package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/sluice-media/sluice/internal/sources"
)

// errNoSource is a /v1/sources/{stream} of a stream that has no source.
var errNoSource = errors.New("no source pulls this stream")

// SourceEditor changes the pulled sources while sluice runs (the
// server, which checks each entry as the config file's): PUT adds or
// replaces one, DELETE removes one. The changes hold until the next
// reload (SIGHUP) or restart.
type SourceEditor interface {
	// PutSource adds or replaces the stream's source from a JSON body in
	// the shape of a YAML sources entry; an error wraps
	// sources.ErrInvalid when the body is at fault.
	PutSource(stream string, body []byte) (created bool, err error)
	// RemoveSource stops the stream's source, false if it has none.
	RemoveSource(stream string) bool
}

// sourceInfo is a source as /v1/sources lists it.
type sourceInfo struct {
	Stream string `json:"stream"`
	sources.State
}

func (a *API) routeSources(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/sources", a.listSources)
	mux.HandleFunc("GET /v1/sources/{stream}", a.getSource)
	mux.HandleFunc("PUT /v1/sources/{stream}", a.putSource)
	mux.HandleFunc("DELETE /v1/sources/{stream}", a.deleteSource)
}

func (a *API) listSources(w http.ResponseWriter, r *http.Request) {
	if !a.authorizeAPI(w, r, "") {
		return
	}
	out := []sourceInfo{}
	if a.cfg.Sources != nil {
		for _, st := range a.cfg.Sources.States() {
			out = append(out, sourceInfo{Stream: st.Stream, State: st})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"sources": out})
}

func (a *API) getSource(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	st := a.sourceOf(name)
	if st == nil {
		a.fail(w, r, "api", name, fmt.Errorf("%w: %.40q", errNoSource, name))
		return
	}
	writeJSON(w, http.StatusOK, sourceInfo{Stream: name, State: *st})
}

// putSource adds or replaces a source: 201 with its state when it is new,
// 200 when it replaced one (restarted only if it changed), 400 with the
// field's message when the body is not a valid source.
func (a *API) putSource(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	if a.cfg.SourceEditor == nil {
		a.fail(w, r, "api", name, errors.ErrUnsupported)
		return
	}
	body, err := a.readBody(w, r, "application/json")
	if err != nil {
		a.fail(w, r, "api", name, err)
		return
	}
	created, err := a.cfg.SourceEditor.PutSource(name, []byte(body))
	if err != nil {
		a.fail(w, r, "api", name, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	a.log.Info("source set through the API", "stream", name, "created", created, "by", r.RemoteAddr)
	info := sourceInfo{Stream: name}
	if st := a.sourceOf(name); st != nil {
		info.State = *st
	}
	writeJSON(w, code, info)
}

func (a *API) deleteSource(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	if a.cfg.SourceEditor == nil || !a.cfg.SourceEditor.RemoveSource(name) {
		a.fail(w, r, "api", name, fmt.Errorf("%w: %.40q", errNoSource, name))
		return
	}
	a.log.Info("source removed through the API", "stream", name, "by", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}
