package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-media/sluice/internal/record"
)

// errBadJSON is a JSON request body that does not say what the call needs.
var errBadJSON = errors.New("invalid JSON body")

// Recordings switches recording per stream (internal/record.Manager).
type Recordings interface {
	SetRecording(stream string, enabled bool) (record.Status, error)
	Status(stream string) record.Status
}

func (a *API) routeRecording(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/streams/{stream}/recording", a.getRecording)
	mux.HandleFunc("POST /v1/streams/{stream}/recording", a.setRecording)
}

// getRecording reports a stream's recording state (also for a stream that
// is not live: its rule and switch).
func (a *API) getRecording(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	writeJSON(w, http.StatusOK, a.cfg.Recordings.Status(name))
}

// setRecording takes {"enabled": true|false}: on needs a recording rule
// for the stream (409 without one) and takes effect now if the stream is
// live, else at its publication; off closes the file being written before
// it answers. The switch holds until the server restarts.
func (a *API) setRecording(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	if !validName(name) {
		a.fail(w, r, "api", name, fmt.Errorf("%w: %.40q", errBadName, name))
		return
	}
	body, err := a.readBody(w, r, "application/json")
	if err != nil {
		a.fail(w, r, "api", name, err)
		return
	}
	var req struct {
		Enabled *bool `json:"enabled"`
	}
	dec := json.NewDecoder(strings.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Enabled == nil {
		a.fail(w, r, "api", name, fmt.Errorf(`%w: want {"enabled": true} or {"enabled": false}`, errBadJSON))
		return
	}
	st, err := a.cfg.Recordings.SetRecording(name, *req.Enabled)
	if err != nil {
		a.fail(w, r, "api", name, err)
		return
	}
	a.log.Info("recording switched", "stream", name, "enabled", *req.Enabled, "by", r.RemoteAddr)
	writeJSON(w, http.StatusOK, st)
}
