package wheppull

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
)

// ErrURL is a source URL that is not whep:// or wheps:// with a host.
var ErrURL = errors.New("invalid WHEP source URL")

// Transport is what a WHEP source reports as the transport in use.
const Transport = "WebRTC"

// signalTimeout bounds each signalling request of a source.
const signalTimeout = 10 * time.Second

// PullConfig is how one whep:// source is pulled.
type PullConfig struct {
	Stream string // the hub stream the source publishes
	// URL is whep://host/path (WHEP over http://) or wheps:// (over
	// https://); a password in it is sent as a bearer token, and the
	// query is kept (sluice takes ?token= too).
	URL            string
	Peers          Peers
	ConnectTimeout time.Duration // the offer and ICE/DTLS; default 10s
	Ingest         ingest.Options
}

// Endpoint is the WHEP endpoint of a whep:// or wheps:// URL and the
// credentials to send it.
func Endpoint(raw string) (string, client.Auth, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrURL, err)
	}
	switch u.Scheme {
	case "whep":
		u.Scheme = "http"
	case "wheps":
		u.Scheme = "https"
	default:
		return "", nil, fmt.Errorf("%w: scheme %q (want whep or wheps)", ErrURL, u.Scheme)
	}
	if u.Host == "" {
		return "", nil, fmt.Errorf("%w: no host", ErrURL)
	}
	var auth client.Auth
	if u.User != nil {
		pass, _ := u.User.Password()
		auth = client.Bearer(pass)
		u.User = nil
	}
	return u.String(), auth, nil
}

// Pull plays the source into h as cfg.Stream until ctx ends (nil is
// returned) or the session fails or is refused (the reason). connected,
// if not nil, is called once ICE and DTLS are up, with Transport.
//
// As with an RTSP camera, a session that fails leaves the stream waiting
// the reconnect grace for the next pull, so viewers keep their sessions;
// a pull stopped by ctx ends the stream.
func Pull(ctx context.Context, h *hub.Hub, cfg PullConfig, connected func(transport string)) error {
	endpoint, auth, err := Endpoint(cfg.URL)
	if err != nil {
		return err
	}
	timeout := cfg.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	// No keep-alive: no idle connection outlives the pull.
	hc := &http.Client{Timeout: signalTimeout, Transport: &http.Transport{DisableKeepAlives: true}}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	l, err := Dial(dctx, Config{Peers: cfg.Peers, HTTP: hc, Endpoint: endpoint, Auth: auth,
		ConnectTimeout: timeout, Ingest: cfg.Ingest})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := l.Attach(h, cfg.Stream); err != nil {
		l.Close()
		return err
	}
	select {
	case <-l.Connected():
		if connected != nil {
			connected(Transport)
		}
	case <-l.Failed():
	case <-ctx.Done():
	}
	select {
	case <-l.Failed():
	case <-ctx.Done():
	}
	why := l.Err()
	l.Close()
	if ctx.Err() != nil {
		// Stopped on purpose: nobody waits for it to come back (unless
		// another publisher took the stream over meanwhile).
		if st := l.Writer(); st != nil && st.Detached() {
			st.End()
		}
		return nil
	}
	if why == nil {
		why = errors.New("session ended")
	}
	return why
}
