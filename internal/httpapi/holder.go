package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/sluice-media/sluice/internal/auth"
)

// tokenHash hashes the request's bearer token, or returns zero without one.
// Only the hash is kept: enough to recognise the session's holder.
func tokenHash(r *http.Request) [sha256.Size]byte {
	t := auth.TokenFromRequest(r)
	if t == "" {
		return [sha256.Size]byte{}
	}
	return sha256.Sum256([]byte(t))
}

// checkHolder lets only the session's holder PATCH or DELETE it: the
// unguessable URL, plus the token that created the session if there was one.
func (e *entry) checkHolder(r *http.Request) error {
	if e.token == ([sha256.Size]byte{}) {
		return nil
	}
	t := tokenHash(r)
	if t == ([sha256.Size]byte{}) {
		return fmt.Errorf("%w: this session was created with a token", auth.ErrNoToken)
	}
	if subtle.ConstantTimeCompare(t[:], e.token[:]) != 1 {
		return fmt.Errorf("%w: the token is not the one that created this session", auth.ErrForbidden)
	}
	return nil
}

// clientIP is the request's client address: the peer's, or the one a
// trusted proxy named (clientAddr has put it in RemoteAddr).
func clientIP(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, _ := netip.ParseAddr(host)
	return ip.Unmap()
}
