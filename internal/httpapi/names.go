package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/sluice-media/sluice/internal/hub"
)

// validName is the hub's one rule for stream names.
func validName(s string) bool { return hub.ValidName(s) }

// checkStreamName rejects /whip/{stream} and /whep/{stream} requests whose
// stream name is not valid, before the mux cleans or redirects the path.
func (a *API) checkStreamName(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		for _, prefix := range []string{"/whip/", "/whep/"} {
			rest, ok := strings.CutPrefix(p, prefix)
			if !ok {
				continue
			}
			name, _, _ := strings.Cut(rest, "/")
			if !validName(name) {
				err := fmt.Errorf("%w: %.40q (%s)", errBadName, name, hub.NameRule)
				a.fail(w, r, prefix[1:5], name, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
