package rtsp

import (
	"context"
	"errors"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/hub"
)

// Errors of the RTSP edge itself.
var (
	errBadName         = errors.New("invalid stream name")
	errTooManySessions = errors.New("server is at its RTSP session limit")
	errTooManyFromIP   = errors.New("too many RTSP sessions from this address")
	errNotReady        = errors.New("stream has no media yet")
	errNoTracks        = errors.New("stream has no track RTSP can carry")
	errPathChanged     = errors.New("SETUP of another stream in the same session")
)

// statusOf maps an error to its RTSP status (RFC 2326 §7.1.1, which takes
// HTTP's codes where it has none of its own): the one place that does.
func statusOf(err error) base.StatusCode {
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return base.StatusUnauthorized
	case errors.Is(err, auth.ErrForbidden):
		return base.StatusForbidden
	case errors.Is(err, errBadName), errors.Is(err, errPathChanged):
		return base.StatusBadRequest
	case errors.Is(err, hub.ErrNotFound):
		return base.StatusNotFound
	case errors.Is(err, hub.ErrBusy):
		// HTTP's 409, which RFC 2326 does not list; ffmpeg and GStreamer
		// show the code and its reason either way.
		return 409
	case errors.Is(err, ErrCodec), errors.Is(err, errNoTracks), errors.Is(err, hub.ErrCodecChanged):
		return base.StatusNotAcceptable
	case errors.Is(err, errTooManySessions), errors.Is(err, errTooManyFromIP), errors.Is(err, hub.ErrTooManyViewers),
		errors.Is(err, errNotReady), errors.Is(err, hub.ErrEnded), errors.Is(err, auth.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return base.StatusServiceUnavailable
	}
	return base.StatusInternalServerError
}

// reply is the response for err, and the error gortsplib gets: an
// authentication failure lets it add the challenge (WWW-Authenticate)
// when the client sent no credentials, and close the connection when it
// sent wrong ones; any other refusal leaves the connection open (nil).
func reply(err error) (*base.Response, error) {
	code := statusOf(err)
	res := &base.Response{StatusCode: code, StatusMessage: reason(code, err)}
	if code == base.StatusUnauthorized {
		return res, liberrors.ErrServerAuth{}
	}
	return res, nil
}

// reason is the status line's reason phrase: the standard phrase and the
// one-line cause (no secret is ever in it: auth errors are safe to send).
func reason(code base.StatusCode, err error) string {
	msg := base.StatusMessages[code]
	if code == 409 {
		msg = "Conflict"
	}
	cause := strings.NewReplacer("\r", " ", "\n", "; ").Replace(err.Error())
	if len(cause) > 200 {
		cause = cause[:200]
	}
	return msg + ": " + cause
}
