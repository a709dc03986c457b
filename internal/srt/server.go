// Package srt is sluice's SRT edge: a server (datarhei/gosrt) whose
// callers publish MPEG-TS into the hub through the frame writer
// (stream id publish:{stream}) or read a stream as MPEG-TS from the shared
// tap reader (read:{stream}), with mediacommon's MPEG-TS reader and
// writer; and Push, the caller side the forwarder uses.
package srt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/edge"
	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// payloadSize is the SRT payload: seven 188-byte MPEG-TS packets, what
// every SRT encoder sends (1316 bytes).
const payloadSize = 7 * 188

// Config configures a Server.
type Config struct {
	Listen     string        // UDP host:port, e.g. "127.0.0.1:8890"
	Passphrase string        // "" = no encryption; else every caller must use it
	Latency    time.Duration // receive latency (TSBPD)

	// HandshakeTimeout bounds the time from the connection to the first
	// MPEG-TS tables; ReadTimeout a publisher's silence; WriteTimeout a
	// reader's (SRT's peer idle timeout).
	HandshakeTimeout, ReadTimeout, WriteTimeout time.Duration

	Hub    *hub.Hub
	Auth   auth.Authenticator // nil: everything allowed
	Taps   *tap.Pool
	Admit  func(ip netip.Addr) (release func(), err error) // nil: no session limits
	Events Events                                          // nil: none
	// Sessions lists the server's publishers and readers for the API
	// (shared with the RTMP server); nil: not listed.
	Sessions *edge.Table
	// Takeover, when set, ends the current publisher of a stream (of any
	// protocol) so that a new authorised publisher replaces it
	// (stream.publisher_takeover); it reports whether there was one.
	Takeover func(stream string) bool
	Log      *slog.Logger
}

// Events takes the stream.published/unpublished and viewer.joined/left
// events of SRT sessions (an *events.Bus).
type Events interface{ Publish(events.Event) }

func (c *Config) defaults() {
	if c.Latency <= 0 {
		c.Latency = 120 * time.Millisecond
	}
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

// Server accepts SRT callers. Each runs in a goroutine of the server's,
// which Close waits for.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ln     gosrt.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[gosrt.Conn]struct{}
}

// srtConfig is gosrt's configuration for both ends: sluice's latency,
// MPEG-TS payloads, and the idle timeout that ends a silent peer.
func srtConfig(latency, idle time.Duration) gosrt.Config {
	c := gosrt.DefaultConfig()
	c.Latency = latency
	c.ReceiverLatency = latency
	c.PeerLatency = latency
	c.PayloadSize = payloadSize
	c.PeerIdleTimeout = idle
	return c
}

// New binds the UDP port and starts accepting callers.
func New(cfg Config) (*Server, error) {
	cfg.defaults()
	if cfg.Hub == nil {
		return nil, errors.New("srt: no hub")
	}
	conf := srtConfig(cfg.Latency, max(cfg.ReadTimeout, cfg.WriteTimeout))
	conf.ConnectionTimeout = cfg.HandshakeTimeout
	ln, err := gosrt.Listen("srt", cfg.Listen, conf)
	if err != nil {
		return nil, fmt.Errorf("srt.listen %s: %w", cfg.Listen, err)
	}
	s := &Server{cfg: cfg, log: cfg.Log.With("proto", "srt"), ln: ln, conns: map[gosrt.Conn]struct{}{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Addr is the UDP address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops accepting, closes every connection and waits for them.
func (s *Server) Close() {
	s.cancel()
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		req, err := s.ln.Accept2()
		if err != nil {
			if s.ctx.Err() == nil {
				s.log.Error("srt accept", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			req.Reject(gosrt.REJ_CLOSE)
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(req)
	}
}

// serve answers one caller and runs its session to the end.
func (s *Server) serve(req gosrt.ConnRequest) {
	defer s.wg.Done()
	log := s.log.With("remote", req.RemoteAddr().String())
	defer func() {
		// Network input must never take the server down.
		if v := recover(); v != nil {
			log.Error("srt connection panicked", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	if err := s.serveReq(req, log); err != nil && s.ctx.Err() == nil {
		log.Info("srt connection closed", "err", err)
	}
}

func (s *Server) serveReq(req gosrt.ConnRequest, log *slog.Logger) error {
	ip := remoteIP(req.RemoteAddr())
	id, err := parseStreamID(req.StreamId())
	if err != nil {
		req.Reject(gosrt.REJ_PEER)
		return fmt.Errorf("refused: stream id %.80q: %w", req.StreamId(), err)
	}
	action := auth.ActionRead
	if id.publish {
		action = auth.ActionPublish
	}
	log = log.With("stream", id.stream, "action", string(action))
	if s.cfg.Admit != nil {
		release, err := s.cfg.Admit(ip)
		if err != nil {
			req.Reject(gosrt.REJ_RESOURCE)
			return fmt.Errorf("refused: %w", err)
		}
		defer release()
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.HandshakeTimeout)
	err = s.cfg.Auth.Authorize(ctx, auth.Request{Action: action, Stream: id.stream, Token: id.token, Remote: ip})
	cancel()
	if err != nil {
		req.Reject(gosrt.REJ_PEER)
		return fmt.Errorf("refused: %w", err)
	}
	if err := checkPassphrase(req, s.cfg.Passphrase); err != nil {
		return err
	}
	var st *hub.Stream
	if !id.publish {
		if st, err = s.cfg.Hub.Lookup(id.stream); err != nil {
			req.Reject(gosrt.REJ_PEER)
			return fmt.Errorf("refused: %w", err)
		}
	}
	conn, err := req.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	if !s.track(conn) {
		return nil
	}
	defer s.untrack(conn)
	if id.publish {
		return s.publish(conn, id.stream, log)
	}
	return s.read(conn, st, log)
}

// checkPassphrase refuses a caller without the server's passphrase, or
// with another; with no passphrase set, an encrypting caller is refused.
func checkPassphrase(req gosrt.ConnRequest, pass string) error {
	switch {
	case pass == "" && req.IsEncrypted():
		req.Reject(gosrt.REJ_UNSECURE)
		return errors.New("refused: the caller encrypts and srt.passphrase is not set")
	case pass == "":
		return nil
	case !req.IsEncrypted():
		req.Reject(gosrt.REJ_UNSECURE)
		return errors.New("refused: no passphrase (srt.passphrase is set)")
	}
	if err := req.SetPassphrase(pass); err != nil {
		req.Reject(gosrt.REJ_BADSECRET)
		return errors.New("refused: wrong passphrase")
	}
	return nil
}

func (s *Server) track(c gosrt.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ctx.Err() != nil {
		_ = c.Close()
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c gosrt.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	_ = c.Close()
}

// listed registers a session in the API's table until the returned func
// is called.
func (s *Server) listed(kind, stream string, c gosrt.Conn) func() {
	_, remove := s.cfg.Sessions.Add(edge.Session{Kind: kind, Stream: stream, Remote: c.RemoteAddr().String(),
		Created: time.Now(), Publisher: kind == "srt-publish"}, func() { _ = c.Close() })
	return remove
}

// event announces a session's start or end (session: "srt-" and the
// caller's socket id).
func (s *Server) event(k events.Kind, stream string, c gosrt.Conn, reason error) {
	if s.cfg.Events == nil {
		return
	}
	e := events.Event{Kind: k, Stream: stream, Session: fmt.Sprintf("srt-%08x", c.SocketId()), Remote: c.RemoteAddr().String()}
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
