package httpapi

import (
	"fmt"
	"net/http"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/hub"
)

// HLSServer serves the LL-HLS files of a stream (internal/hls.Server),
// writing nothing when it returns an error; the edge authorises first.
type HLSServer interface {
	Serve(w http.ResponseWriter, r *http.Request, stream string) error
}

// routeOutputs adds the routes of the outputs that are configured: LL-HLS
// the recording switch, and the recordings and their playback.
func (a *API) routeOutputs(mux *http.ServeMux) {
	if a.cfg.HLS != nil {
		// index.m3u8, the media playlists, init files, segments and parts
		// all live directly under the stream.
		mux.HandleFunc("GET /hls/{stream}/{file}", a.serveHLS)
	}
	if a.cfg.Recordings != nil {
		a.routeRecording(mux)
	}
	if a.cfg.Library != nil {
		a.routeRecordings(mux)
	}
	if a.cfg.Snapshots != nil {
		a.routeSnapshot(mux)
	}
}

// serveHLS authorises a player like a WHEP viewer (action read) on every
// request: playlists pass ?token= on to the files they list.
func (a *API) serveHLS(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !validName(name) {
		a.fail(w, r, "hls", name, fmt.Errorf("%w: %.40q (%s)", errBadName, name, hub.NameRule))
		return
	}
	if err := a.authz.Authorize(r.Context(), auth.NewRequest(r, auth.ActionRead, name)); err != nil {
		a.fail(w, r, "hls", name, err)
		return
	}
	if err := a.demand(r.Context(), name); err != nil {
		a.fail(w, r, "hls", name, err)
		return
	}
	if err := a.cfg.HLS.Serve(w, r, name); err != nil {
		if r.Context().Err() != nil {
			return // the player left while waiting for the first segment
		}
		a.fail(w, r, "hls", name, err)
	}
}
