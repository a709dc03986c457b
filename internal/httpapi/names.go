package httpapi

import (
	"fmt"
	"net/http"
	"strings"
)

// maxNameLen bounds stream names (they appear in URLs, logs and file names).
const maxNameLen = 128

// validName accepts letters, digits and "-_.~", not starting with a dot.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}

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
				err := fmt.Errorf("%w: %.40q (1-%d of A-Z a-z 0-9 - _ . ~, not starting with a dot)", errBadName, name, maxNameLen)
				a.fail(w, r, prefix[1:5], name, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
