// Package rtmp is sluice's RTMP edge: a server (gortmplib) that takes
// streams published by OBS, ffmpeg and hardware encoders into the hub
// through the frame writer, and serves them to players (ffplay, VLC, other
// servers) from the shared tap reader; and Push, the client side that the
// forwarder uses to send a stream to another service.
//
// The stream name is the last element of the URL's path, so
// rtmp://HOST/live/NAME and rtmp://HOST/NAME both address stream NAME
// (OBS: Server rtmp://HOST/live, Stream Key NAME). A token rides in the
// query, on the URL or on the stream key: NAME?token=T.
package rtmp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	"github.com/bluenviron/gortmplib"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/edge"
	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// Config configures a Server. Listen and TLSListen may each be empty
// (that listener is off), not both.
type Config struct {
	Listen    string // plain RTMP, e.g. "127.0.0.1:1935"
	TLSListen string // RTMPS, e.g. "127.0.0.1:1936"; needs TLS
	TLS       *tls.Config

	// HandshakeTimeout bounds the RTMP handshake, connect and the
	// publish/play command; ReadTimeout a publisher's silence and
	// WriteTimeout a write to a player.
	HandshakeTimeout, ReadTimeout, WriteTimeout time.Duration

	Hub    *hub.Hub
	Auth   auth.Authenticator // nil: everything allowed
	Taps   *tap.Pool          // the shared readers of the outputs
	Admit  Admit              // nil: no session limits
	Events Events             // nil: none
	// Sessions lists the server's publishers and players for the API
	// (shared with the SRT server); nil: not listed.
	Sessions *edge.Table
	// Takeover, when set, ends the current publisher of a stream (of any
	// protocol) so that a new authorised publisher replaces it
	// (stream.publisher_takeover); it reports whether there was one.
	Takeover func(stream string) bool
	Log      *slog.Logger
}

// Events takes the stream.published/unpublished and viewer.joined/left
// events of RTMP sessions (an *events.Bus).
type Events interface{ Publish(events.Event) }

// Admit takes a place for a session from ip under the server's session
// limits, or says which limit refuses it; release gives it back.
type Admit func(ip netip.Addr) (release func(), err error)

func (c *Config) defaults() {
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 10 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.Auth == nil {
		c.Auth = auth.AllowAll{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Taps == nil {
		c.Taps = tap.NewPool()
	}
}

// Server accepts RTMP and RTMPS connections. Every connection runs in a
// goroutine of the server's, which Close waits for.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ln     net.Listener // nil when off
	tlsLn  net.Listener // nil when off
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// New binds the listeners and starts accepting.
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.Listen == "" && cfg.TLSListen == "" {
		return nil, errors.New("rtmp: no listener")
	}
	if cfg.Hub == nil {
		return nil, errors.New("rtmp: no hub")
	}
	s := &Server{cfg: cfg, log: cfg.Log.With("proto", "rtmp"), conns: map[net.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Listen != "" {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("rtmp.listen %s: %w", cfg.Listen, err)
		}
		s.ln = ln
	}
	if cfg.TLSListen != "" {
		if cfg.TLS == nil {
			s.closeListeners()
			return nil, errors.New("rtmp.tls_listen: no certificate (rtmp.tls_cert, rtmp.tls_key)")
		}
		ln, err := tls.Listen("tcp", cfg.TLSListen, cfg.TLS)
		if err != nil {
			s.closeListeners()
			return nil, fmt.Errorf("rtmp.tls_listen %s: %w", cfg.TLSListen, err)
		}
		s.tlsLn = ln
	}
	for _, ln := range []net.Listener{s.ln, s.tlsLn} {
		if ln != nil {
			s.wg.Add(1)
			go s.accept(ln)
		}
	}
	return s, nil
}

// Addr is the plain RTMP listener's address, or nil.
func (s *Server) Addr() net.Addr {
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// TLSAddr is the RTMPS listener's address, or nil.
func (s *Server) TLSAddr() net.Addr {
	if s.tlsLn == nil {
		return nil
	}
	return s.tlsLn.Addr()
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *Server) Close() {
	s.cancel()
	s.closeListeners()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) closeListeners() {
	for _, ln := range []net.Listener{s.ln, s.tlsLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

func (s *Server) accept(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("rtmp accept", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			_ = nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(nc)
	}
}

// serve runs one connection to its end.
func (s *Server) serve(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, nc)
		s.mu.Unlock()
		_ = nc.Close()
	}()
	log := s.log.With("remote", nc.RemoteAddr().String())
	defer func() {
		// Network input must never take the server down.
		if v := recover(); v != nil {
			log.Error("rtmp connection panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	if err := s.serveConn(nc, log); err != nil && s.ctx.Err() == nil {
		log.Info("rtmp connection closed", "err", err)
	}
}

func (s *Server) serveConn(nc net.Conn, log *slog.Logger) error {
	ip := remoteIP(nc.RemoteAddr())
	if s.cfg.Admit != nil {
		release, err := s.cfg.Admit(ip)
		if err != nil {
			return err
		}
		defer release()
	}
	_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	sc := &gortmplib.ServerConn{RW: nc}
	if err := sc.Initialize(); err != nil {
		return fmt.Errorf("handshake or connect: %w", err)
	}
	if err := sc.AcceptConn(); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	name, token, err := streamOf(sc.URL)
	if err != nil {
		_ = sc.RejectAction()
		return err
	}
	action := auth.ActionRead
	if sc.Publish {
		action = auth.ActionPublish
	}
	log = log.With("stream", name, "action", string(action))
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
	err = s.cfg.Auth.Authorize(ctx, auth.Request{Action: action, Stream: name, Token: token, Remote: ip})
	cancel()
	if err != nil {
		_ = sc.RejectAction()
		return fmt.Errorf("refused: %w", err)
	}
	if sc.Publish {
		return s.publish(nc, sc, name, log)
	}
	return s.play(nc, sc, name, log)
}

// listed registers a session in the API's table until the returned func
// is called.
func (s *Server) listed(kind, stream string, nc net.Conn) func() {
	_, remove := s.cfg.Sessions.Add(edge.Session{Kind: kind, Stream: stream, Remote: nc.RemoteAddr().String(),
		Created: time.Now(), Publisher: kind == "rtmp-publish"}, func() { _ = nc.Close() })
	return remove
}

// event announces a session's start or end (session: "rtmp-" and the
// client's address).
func (s *Server) event(k events.Kind, stream string, nc net.Conn, reason error) {
	if s.cfg.Events == nil {
		return
	}
	e := events.Event{Kind: k, Stream: stream, Session: "rtmp-" + nc.RemoteAddr().String(), Remote: nc.RemoteAddr().String()}
	if reason != nil {
		e.Reason = reason.Error()
	}
	s.cfg.Events.Publish(e)
}

func remoteIP(a net.Addr) netip.Addr {
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}
