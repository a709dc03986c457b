package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/cluster"
	"github.com/sluice-media/sluice/internal/hls"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/record"
	"github.com/sluice-media/sluice/internal/rtc"
	"github.com/sluice-media/sluice/internal/snapshot"
	"github.com/sluice-media/sluice/internal/sources"
	"github.com/sluice-media/sluice/internal/tap"
	"github.com/sluice-media/sluice/internal/whep"
	"github.com/sluice-media/sluice/internal/whip"
)

// Errors of the HTTP edge itself.
var (
	errMediaType       = errors.New("unsupported media type")
	errTooLarge        = errors.New("request body too large")
	errNoSession       = errors.New("no such session")
	errBadName         = errors.New("invalid stream name")
	errTooManySessions = errors.New("server is at its session limit")
	errTooManyFromIP   = errors.New("too many sessions from this address")
	errKicked          = errors.New("kicked through the API")

	errPrecondition         = errors.New("ETag does not match")
	errPreconditionRequired = errors.New("precondition required")
)

// statusOf maps an error to its HTTP status: the one place that does.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, auth.ErrUnauthenticated):
		return http.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errTooManyFromIP):
		return http.StatusTooManyRequests
	case errors.Is(err, errPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(err, errPreconditionRequired):
		return http.StatusPreconditionRequired
	case errors.Is(err, rtc.ErrBadOffer), errors.Is(err, rtc.ErrBadFragment), errors.Is(err, errBadName),
		errors.Is(err, whep.ErrNoLayer):
		return http.StatusBadRequest
	case errors.Is(err, hub.ErrNotFound), errors.Is(err, errNoSession), errors.Is(err, hls.ErrNoFile):
		return http.StatusNotFound
	case errors.Is(err, errBadJSON), errors.Is(err, errBadSpan), errors.Is(err, record.ErrSpanTooLarge),
		errors.Is(err, sources.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, record.ErrNoRecording), errors.Is(err, errNoSource):
		return http.StatusNotFound
	case errors.Is(err, errPlaybackBusy), errors.Is(err, snapshot.ErrUnavailable), errors.Is(err, snapshot.ErrDecode),
		errors.Is(err, snapshot.ErrNoVideo), errors.Is(err, snapshot.ErrNoKeyframe), errors.Is(err, snapshot.ErrBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, record.ErrNoRule):
		return http.StatusConflict
	case errors.Is(err, hls.ErrNotReady), errors.Is(err, hls.ErrClosed):
		return http.StatusServiceUnavailable
	case errors.Is(err, hub.ErrBusy), errors.Is(err, cluster.ErrOwned):
		return http.StatusConflict
	case errors.Is(err, whep.ErrNoCompatibleCodec), errors.Is(err, whip.ErrNoMedia), errors.Is(err, tap.ErrNoTracks):
		return http.StatusNotAcceptable
	case errors.Is(err, errTooManySessions), errors.Is(err, hub.ErrTooManyViewers),
		errors.Is(err, whep.ErrNotReady), errors.Is(err, hub.ErrEnded), errors.Is(err, auth.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrFull), errors.Is(err, cluster.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// fail answers with the status for err and a one-line reason, and logs it.
func (a *API) fail(w http.ResponseWriter, r *http.Request, kind, stream string, err error) {
	code := statusOf(err)
	switch code {
	case http.StatusServiceUnavailable, http.StatusTooManyRequests:
		w.Header().Set("Retry-After", "1")
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", auth.Challenge(err))
	}
	reason := strings.ReplaceAll(err.Error(), "\n", "; ")
	level := slog.LevelWarn
	if code >= 500 && code != http.StatusServiceUnavailable {
		level = slog.LevelError
	}
	if r.Method == http.MethodPost && (kind == "whip" || kind == "whep") {
		a.cfg.Metrics.OfferRejected(kind, code)
	}
	a.log.Log(r.Context(), level, "request failed", "kind", kind, "method", r.Method,
		"stream", stream, "remote", r.RemoteAddr, "status", code, "err", reason)
	http.Error(w, reason, code)
}
