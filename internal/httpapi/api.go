// Package httpapi is sluice's HTTP edge: WHIP and WHEP resources (RFC 9725),
// CORS, request limits, and the mapping of every error to a status code and
// a one-line reason.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/rtc"
	"github.com/sluice-media/sluice/internal/whep"
	"github.com/sluice-media/sluice/internal/whip"
	"github.com/sluice-media/sluice/web"
)

// Config is the HTTP edge's share of the configuration.
type Config struct {
	CORSOrigin       string
	MaxBodyBytes     int64
	MaxSessions      int
	MaxSessionsPerIP int
	// TrustedProxies are the proxies whose Forwarded / X-Forwarded-For
	// headers name the client (clientaddr.go); PerIPExempt the clients
	// MaxSessionsPerIP does not bound.
	TrustedProxies      []netip.Prefix
	PerIPExempt         []netip.Prefix
	PublisherTakeover   bool
	ICEServers          []ICEServer
	ICEServersOnOptions bool
	Metrics             *metrics.Metrics   // served at /metrics; nil: none
	Ready               *metrics.Readiness // served at /readyz; nil: none
	HLS                 HLSServer          // serves /hls/; nil: none
	Recordings          Recordings         // POST /v1/streams/{stream}/recording; nil: none
	Library             Library            // /v1/recordings and /playback/; nil: none
	Snapshots           Snapshots          // /v1/streams/{stream}/snapshot.jpg; nil: none
	PlaybackMaxDuration time.Duration      // longest playback span (0: DefaultPlaybackMaxDuration)
	Cluster             Cluster            // origin/edge cluster; nil: single node
	Forwards            Forwards           // forward targets in GET /v1/streams/{stream}; nil: none
	Sources             Sources            // pulled sources; nil: none
	SourceEditor        SourceEditor       // PUT/DELETE /v1/sources/{stream}; nil: 501
	Edges               EdgeSessions       // RTMP and SRT sessions; nil: none
}

// offerTimeout bounds the work behind one POST (mostly ICE gathering).
const offerTimeout = 10 * time.Second

// API serves the HTTP resources and owns the registry of sessions.
type API struct {
	cfg      Config
	log      *slog.Logger
	authz    auth.Authenticator
	bus      *events.Bus
	whip     whip.Deps
	whep     whep.Deps
	sessions *registry

	builds  chan struct{}         // playback files being built (playback.go)
	builtMu sync.Mutex            // guards built
	built   map[string]*builtFile // playback files kept for range requests
}

// New returns the HTTP edge over the given ingest and egress dependencies;
// authz decides who may publish and read; session events go to bus.
func New(cfg Config, log *slog.Logger, authz auth.Authenticator, bus *events.Bus, in whip.Deps, out whep.Deps) *API {
	return &API{cfg: cfg, log: log, authz: authz, bus: bus, whip: in, whep: out,
		sessions: newRegistry(cfg.MaxSessions, cfg.MaxSessionsPerIP)}
}

// Handler returns the routes. Go's ServeMux answers a known path with the
// wrong method by 405 and an Allow header (RFC 9110 §15.5.6).
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, kind := range []string{"whip", "whep"} {
		mux.HandleFunc("POST /"+kind+"/{stream}", a.offer(kind))
		mux.HandleFunc("OPTIONS /"+kind+"/{stream}", a.preflight)
		mux.HandleFunc("DELETE /"+kind+"/{stream}/{session}", a.deleteSession(kind))
		mux.HandleFunc("PATCH /"+kind+"/{stream}/{session}", a.patchSession(kind))
		mux.HandleFunc("OPTIONS /"+kind+"/{stream}/{session}", a.preflight)
	}
	a.routeV1(mux)
	a.routeSources(mux)
	a.routeOutputs(mux)
	if a.cfg.Metrics != nil {
		mux.Handle("GET /metrics", a.cfg.Metrics.Handler())
	}
	if a.cfg.Ready != nil {
		mux.Handle("GET /readyz", a.cfg.Ready)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	page := web.Handler()
	for _, p := range web.Paths() {
		mux.Handle("GET "+p, page)
	}
	return a.clientAddr(a.cors(a.checkStreamName(mux)))
}

// CloseAll ends every session, in parallel, and waits for them.
func (a *API) CloseAll() {
	a.sessions.closeAll()
	a.closePlayback()
}

// Sessions is the number of open sessions.
func (a *API) Sessions() int { return a.sessions.len() }

func (a *API) offer(kind string) http.HandlerFunc {
	action := auth.ActionPublish
	if kind == "whep" {
		action = auth.ActionRead
	}
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("stream")
		// Another node's pull is authenticated by the cluster secret.
		peer := kind == "whep" && a.cfg.Cluster != nil && a.cfg.Cluster.Peer(r, name)
		if !peer {
			if err := a.authz.Authorize(r.Context(), auth.NewRequest(r, action, name)); err != nil {
				a.fail(w, r, kind, name, err)
				return
			}
		}
		body, err := a.readOffer(w, r)
		if err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		ip := clientIP(r)
		if peer || inPrefixes(ip, a.cfg.PerIPExempt) {
			ip = netip.Addr{} // other nodes' pulls and exempt clients are not held to the per-address limit
		}
		release, err := a.sessions.reserve(ip)
		if err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		defer release()
		if kind == "whep" {
			if err := a.demand(r.Context(), name); err != nil {
				a.fail(w, r, kind, name, err)
				return
			}
		}

		ctx, cancel := context.WithTimeout(r.Context(), offerTimeout+a.whep.WaitForPublisher)
		defer cancel()
		clusterDone, clusterWatch, redirected, err := a.clusterOffer(ctx, w, r, kind, name, peer)
		if redirected {
			return
		}
		if err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		clusterDone = sync.OnceFunc(clusterDone)
		var e *entry
		onClose := func(reason error) {
			a.sessions.remove(e)
			a.sessionEnded(e, reason)
			clusterDone()
		}
		e = &entry{kind: kind, stream: name, ip: ip, remote: r.RemoteAddr, created: time.Now(), token: tokenHash(r), etag: newETag()}
		switch kind {
		case "whip":
			var s *whip.Session
			s, err = whip.New(ctx, a.whip, name, body, r.RemoteAddr, onClose)
			// whip.New claims the stream last: busy means the offer passed
			// every check, so a takeover can only replace a publisher with
			// a working one.
			if errors.Is(err, hub.ErrBusy) && a.cfg.PublisherTakeover && a.KickPublisher(name) {
				s, err = whip.New(ctx, a.whip, name, body, r.RemoteAddr, onClose)
			}
			if err == nil {
				e.session = s
			}
		default:
			// ?layer= pins a simulcast layer (layer.go).
			layer := r.URL.Query().Get("layer")
			var s *whep.Session
			if err = whep.CheckLayer(layer); err == nil {
				s, err = whep.New(ctx, a.whep, name, body, r.RemoteAddr, onClose)
			}
			if err == nil {
				if err = s.SetLayer(layer); err != nil {
					s.Close(err)
				} else {
					e.session = s
				}
			}
		}
		if err != nil {
			clusterDone()
			a.fail(w, r, kind, name, err)
			return
		}
		if clusterWatch != nil {
			clusterWatch(e.session)
		}
		a.sessionStarted(e)
		a.sessions.add(e)
		h := w.Header()
		h.Set("Content-Type", "application/sdp")
		// RFC 9725 §4.2: the session URL goes in Location, the ICE session
		// version in ETag; §4.6: ICE servers in Link headers.
		h.Set("Location", "/"+kind+"/"+url.PathEscape(name)+"/"+e.session.ID())
		h.Set("ETag", e.etag)
		h.Set("Accept-Patch", sdpFragType)
		for _, l := range linkHeaders(a.cfg.ICEServers, time.Now()) {
			h.Add("Link", l)
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, e.session.Answer())
	}
}

// readOffer checks the media type and size of an offer and returns it.
func (a *API) readOffer(w http.ResponseWriter, r *http.Request) (string, error) {
	return a.readBody(w, r, "application/sdp")
}

// readBody checks the media type and size of a request body and returns it.
func (a *API) readBody(w http.ResponseWriter, r *http.Request, want string) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != want {
		return "", fmt.Errorf("%w: Content-Type %q, want %s", errMediaType, r.Header.Get("Content-Type"), want)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", fmt.Errorf("%w: over %d bytes", errTooLarge, tooBig.Limit)
		}
		return "", fmt.Errorf("%w: reading body: %v", rtc.ErrBadOffer, err)
	}
	return string(body), nil
}

func (a *API) deleteSession(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, id := r.PathValue("stream"), r.PathValue("session")
		e := a.sessions.lookup(kind, name, id)
		if e == nil {
			a.fail(w, r, kind, name, fmt.Errorf("%w: %s", errNoSession, id))
			return
		}
		if err := e.checkHolder(r); err != nil {
			a.fail(w, r, kind, name, err)
			return
		}
		e.session.Close(nil)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "session ended\n")
	}
}

// newETag returns a fresh opaque entity tag for a session's ICE state.
func newETag() string { return `"` + rtc.NewID()[:20] + `"` }

// preflight answers OPTIONS: CORS preflights (headers from cors) and, where
// configured, the ICE servers in Link headers (RFC 9725 §4.6).
func (a *API) preflight(w http.ResponseWriter, _ *http.Request) {
	if a.cfg.ICEServersOnOptions {
		for _, l := range linkHeaders(a.cfg.ICEServers, time.Now()) {
			w.Header().Add("Link", l)
		}
	}
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

// cors adds CORS headers to every response (WHIP/WHEP clients run in
// browsers on other origins).
func (a *API) cors(next http.Handler) http.Handler {
	if a.cfg.CORSOrigin == "" {
		return next // CORS switched off
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", a.cfg.CORSOrigin)
		h.Set("Access-Control-Expose-Headers", "Location, ETag, Link, Accept-Patch")
		if r.Method == http.MethodOptions {
			h.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
			h.Set("Access-Control-Max-Age", "86400")
		}
		if a.cfg.CORSOrigin != "*" {
			h.Add("Vary", "Origin")
		}
		next.ServeHTTP(w, r)
	})
}
