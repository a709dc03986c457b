package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/sluice-media/sluice/internal/snapshot"
)

// Snapshots makes JPEG pictures of live streams (internal/snapshot).
type Snapshots interface {
	Get(ctx context.Context, stream string) (snapshot.Image, error)
}

func (a *API) routeSnapshot(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/streams/{stream}/snapshot.jpg", a.getSnapshot)
}

// getSnapshot answers the stream's newest keyframe as JPEG (made at most
// once a second per stream); 503 with the reason when there is none.
func (a *API) getSnapshot(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	img, err := a.cfg.Snapshots.Get(r.Context(), name)
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left
		}
		a.fail(w, r, "api", name, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "image/jpeg")
	h.Set("Content-Length", strconv.Itoa(len(img.JPEG)))
	h.Set("Cache-Control", "no-cache")
	h.Set("Last-Modified", img.Taken.UTC().Format(http.TimeFormat))
	h.Set("X-Image-Size", strconv.Itoa(img.Width)+"x"+strconv.Itoa(img.Height))
	_, _ = w.Write(img.JPEG)
}
