package httpapi

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/sluice-media/sluice/internal/rtc"
)

// sdpFragType is the media type of trickle-ICE PATCH bodies (RFC 8840).
const sdpFragType = "application/trickle-ice-sdpfrag"

// patchSession handles trickle ICE and ICE restarts (RFC 9725 §4.4). A
// fragment with new ICE credentials is a restart: it needs If-Match (428
// without), answers 200 with the server's new credentials and candidates and
// a new ETag. Otherwise its candidates are added: 204. An If-Match that
// names another ETag gets 412.
func (a *API) patchSession(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("stream")
		e := a.sessions.lookup(kind, name, r.PathValue("session"))
		if e == nil {
			a.fail(w, r, kind, name, fmt.Errorf("%w: %s", errNoSession, r.PathValue("session")))
			return
		}
		if err := e.checkHolder(r); err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		body, err := a.readBody(w, r, sdpFragType)
		if err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		frag, err := rtc.ParseFragment(body)
		if err != nil {
			a.fail(w, r, kind, name, err)
			return
		}

		e.mu.Lock() // one PATCH at a time per session: ETag and ICE state move together
		defer e.mu.Unlock()
		ifMatch := r.Header.Get("If-Match")
		if ifMatch != "" && ifMatch != "*" && ifMatch != e.etag {
			a.fail(w, r, kind, name, fmt.Errorf("%w: If-Match %.40s, current ETag %s", errPrecondition, ifMatch, e.etag))
			return
		}
		restart, apply := iceOf(e.session, frag)
		if !restart {
			if _, err := apply(r.Context()); err != nil {
				a.fail(w, r, kind, name, err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if ifMatch == "" {
			a.fail(w, r, kind, name, fmt.Errorf("%w: an ICE restart needs If-Match", errPreconditionRequired))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), offerTimeout)
		defer cancel()
		fragment, err := apply(ctx)
		if err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		e.etag = newETag()
		a.log.Info("ICE restart", "kind", kind, "stream", name, "session", e.session.ID(), "remote", r.RemoteAddr)
		w.Header().Set("Content-Type", sdpFragType)
		w.Header().Set("ETag", e.etag)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, fragment)
	}
}

// liteICE is a session whose ICE sluice answers itself: a WHEP viewer
// detached from pion (whep/detach.go).
type liteICE interface {
	Detached() bool
	IsICERestart(rtc.Fragment) bool
	RestartICE(rtc.Fragment) (string, error)
}

// iceOf says whether the fragment restarts the session's ICE, and
// returns what applies it: a restart gives the answer fragment; otherwise
// the candidates are added (to pion's agent; a detached session needs
// none: the peer's checks show its address).
func iceOf(s session, f rtc.Fragment) (restart bool, apply func(context.Context) (string, error)) {
	if l, ok := s.(liteICE); ok && l.Detached() {
		if !l.IsICERestart(f) {
			return false, func(context.Context) (string, error) { return "", nil }
		}
		return true, func(context.Context) (string, error) { return l.RestartICE(f) }
	}
	pc := s.PeerConnection()
	if pc == nil { // detached meanwhile
		return false, func(context.Context) (string, error) {
			return "", fmt.Errorf("%w: the session changed, send it again", rtc.ErrBadFragment)
		}
	}
	if !rtc.IsRestart(pc, f) {
		return false, func(context.Context) (string, error) { return "", rtc.Trickle(pc, f) }
	}
	return true, func(ctx context.Context) (string, error) { return rtc.Restart(ctx, pc, f) }
}
