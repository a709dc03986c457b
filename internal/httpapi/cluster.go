package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
)

// Cluster is what the HTTP edge asks of the origin/edge cluster
// (cluster.Cluster); nil in single-node mode.
type Cluster interface {
	// Peer reports whether r is another node pulling stream: it skips
	// viewer auth and admission.
	Peer(r *http.Request, stream string) bool
	// Publish claims stream for a publisher here; release gives it back,
	// lost is closed if the claim is lost to another node.
	Publish(ctx context.Context, stream string) (release func(), lost <-chan struct{}, err error)
	// View admits a viewer here (leave counts it out), or names the base
	// URL of a node with room to redirect it to.
	View(ctx context.Context, stream string) (redirect string, leave func(), err error)
}

// errOwnershipLost closes a publisher whose node lost the stream's lease.
var errOwnershipLost = errors.New("stream ownership lost to another node")

// clusterOffer does the cluster's part of a POST before the session is
// made: a publisher claims the stream, a viewer is admitted or redirected.
// done, never nil, ends what it started (call it when the session ends or
// fails); watch, if not nil, gets the new session. redirected means a 307
// was written.
func (a *API) clusterOffer(ctx context.Context, w http.ResponseWriter, r *http.Request, kind, name string, peer bool) (done func(), watch func(session), redirected bool, err error) {
	done = func() {}
	c := a.cfg.Cluster
	if c == nil || peer {
		return done, nil, false, nil
	}
	if kind == "whip" {
		release, lost, err := c.Publish(ctx, name)
		if err != nil {
			return done, nil, false, err
		}
		return release, func(s session) {
			go func() {
				select {
				case <-lost:
					s.Close(errOwnershipLost)
				case <-s.Done():
				}
			}()
		}, false, nil
	}
	redirect, leave, err := c.View(ctx, name)
	if err != nil {
		return done, nil, false, err
	}
	if redirect != "" {
		// RFC 9725 §4.5: a WHEP endpoint may redirect with 307, which
		// keeps the method and the offer.
		loc := strings.TrimSuffix(redirect, "/") + r.URL.RequestURI()
		a.log.Info("viewer redirected", "stream", name, "remote", r.RemoteAddr, "to", loc)
		http.Redirect(w, r, loc, http.StatusTemporaryRedirect)
		return done, nil, true, nil
	}
	return leave, nil, false, nil
}
