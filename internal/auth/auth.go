// Package auth decides who may publish, read or use the API, from a bearer
// token, the stream name and the client's address.
//
// One small interface, Authenticator, is implemented by an allow-all and a
// deny-all policy, static bearer tokens, JWTs (HS256, RS256, ES256 with keys
// from a PEM or JWKS file) and an HTTP callback. Rules combines them per
// stream pattern and action; New builds the whole policy from Config.
//
// Every denial is ErrUnauthenticated, ErrForbidden or ErrUnavailable wrapped
// with a one-line reason that is safe to send to the client: it never holds a
// secret, a token, or the callback's address.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Action is what a request wants to do.
type Action string

// The actions a request can ask for.
const (
	ActionPublish Action = "publish" // WHIP ingest
	ActionRead    Action = "read"    // WHEP, HLS playback
	ActionAPI     Action = "api"     // the /v1 JSON API
)

// actions lists every Action, in the order used in messages.
var actions = []Action{ActionPublish, ActionRead, ActionAPI}

// valid reports whether a is one of the known actions.
func (a Action) valid() bool {
	for _, k := range actions {
		if a == k {
			return true
		}
	}
	return false
}

// Request is one authorization question.
type Request struct {
	Action Action
	// Stream is the stream name; "" for a server-wide API call (which
	// only the pattern "*" matches).
	Stream string
	// Token is the bearer token as sent, "" when there is none.
	Token string
	// Remote is the client's address; the zero Addr when unknown.
	Remote netip.Addr
}

// NewRequest builds the Request for an HTTP request: the token from
// TokenFromRequest and the remote address from r.RemoteAddr (which the HTTP
// edge has set to the client's when a trusted proxy names it).
func NewRequest(r *http.Request, action Action, stream string) Request {
	req := Request{Action: action, Stream: stream, Token: TokenFromRequest(r)}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		req.Remote = ap.Addr().Unmap()
	} else if a, err := netip.ParseAddr(r.RemoteAddr); err == nil {
		req.Remote = a.Unmap()
	}
	return req
}

// Authenticator decides whether a request may go ahead. It returns nil to
// allow, or an error wrapping ErrUnauthenticated, ErrForbidden or
// ErrUnavailable with a one-line reason. It is safe for concurrent use.
type Authenticator interface {
	Authorize(ctx context.Context, r Request) error
}

// Sentinel errors; test with errors.Is. The HTTP edge maps them to 401 (with
// a WWW-Authenticate header, see Challenge), 403 and 503.
var (
	// ErrUnauthenticated: no token, or one that is invalid or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the token is valid but does not allow this action on
	// this stream, or a rule denies it outright.
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: the authorization callback could not answer (timeout,
	// network error, 5xx). The request is denied.
	ErrUnavailable = errors.New("authorization unavailable")
	// ErrNoToken is the ErrUnauthenticated returned when a request that
	// needs a token carries none.
	ErrNoToken = fmt.Errorf("%w: no token", ErrUnauthenticated)
)

// Challenge returns the WWW-Authenticate header value for a 401 answer to
// err (RFC 6750 §3), or "" when err is not ErrUnauthenticated. A request that
// carried no token gets a bare challenge; one whose token was rejected gets
// error="invalid_token" (RFC 6750 §3.1).
func Challenge(err error) string {
	switch {
	case !errors.Is(err, ErrUnauthenticated):
		return ""
	case errors.Is(err, ErrNoToken):
		return `Bearer realm="sluice"`
	}
	return `Bearer realm="sluice", error="invalid_token"`
}

// TokenFromRequest returns the bearer token of r: from the Authorization
// header ("Bearer <token>", scheme case-insensitive, RFC 6750 §2.1), else
// from the "token" query parameter (RFC 6750 §2.3, for players that cannot
// set headers), else "".
func TokenFromRequest(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
		if ok && strings.EqualFold(scheme, "Bearer") {
			if tok = strings.TrimSpace(tok); tok != "" {
				return tok
			}
		}
	}
	if r.URL != nil {
		return r.URL.Query().Get("token")
	}
	return ""
}

// AllowAll allows every request. It is the policy when nothing is configured.
type AllowAll struct{}

// Authorize returns nil.
func (AllowAll) Authorize(context.Context, Request) error { return nil }

// DenyAll denies every request with ErrForbidden.
type DenyAll struct{}

// Authorize returns ErrForbidden.
func (DenyAll) Authorize(_ context.Context, r Request) error {
	return fmt.Errorf("%w: %s denied by rule", ErrForbidden, r.Action)
}
