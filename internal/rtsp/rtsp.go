// Package rtsp is sluice's RTSP edge, a thin mapping between gortsplib and
// the hub: a server that plays any hub stream to RTSP readers (TCP
// interleaved, UDP unicast, RTSPS) and takes RTSP publishers (ANNOUNCE/
// RECORD), and the pulled sources (cameras, other RTSP servers) that
// gortsplib's client feeds into the hub, owned by one supervisor
// (Sources).
package rtsp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	rtspauth "github.com/bluenviron/gortsplib/v5/pkg/auth"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
)

// Config configures the RTSP server.
type Config struct {
	// Listen is the host:port of plain RTSP; "" turns it off.
	Listen string
	// UDPRTPPort and UDPRTCPPort, both set (an even port and the next),
	// take UDP unicast readers and publishers on Listen's host; both 0
	// turn UDP off (TCP interleaved only).
	UDPRTPPort, UDPRTCPPort int
	// TLSListen is the host:port of RTSPS (TCP only); "" turns it off.
	TLSListen string
	TLS       *tls.Config // required with TLSListen

	ReadTimeout  time.Duration // a request, or a UDP session's packets, may take this long; default 10s
	WriteTimeout time.Duration // default 10s
	// ReadyTimeout bounds how long a DESCRIBE waits for a stream that is
	// being published (an on-demand source starting, a publisher
	// connecting).
	ReadyTimeout time.Duration
	// MaxSessions and MaxSessionsPerIP bound the RTSP sessions (readers
	// and publishers); 0 is no limit.
	MaxSessions, MaxSessionsPerIP int
	// WriteQueue is each reader's queue of packets in gortsplib, a power
	// of two; a reader whose queue is full skips to the newest keyframe.
	// Default 512.
	WriteQueue int
}

// Deps are the parts of sluice the server uses.
type Deps struct {
	Hub  *hub.Hub
	Auth auth.Authenticator // nil allows everything
	// Ingest bounds each published track's reorder window and keyframe
	// requests, as for WHIP publishers.
	Ingest ingest.Options
	Log    *slog.Logger
	// Sources starts on-demand pulls for the first reader; nil: none.
	Sources Demander
	// DigestTokens are the tokens a Digest answer is checked against:
	// Digest hides the password, so only a token the server knows (the
	// static rules' tokens) can be found from it. nil or none: only Basic
	// is offered.
	DigestTokens func() []string
}

// Demander starts the pull of an on-demand source when a reader asks for
// its stream. Demand reports whether name is such a source.
type Demander interface {
	Demand(name string) bool
}

// Server is the RTSP (and RTSPS) server.
type Server struct {
	cfg  Config
	deps Deps
	log  *slog.Logger

	plain, secure *gortsplib.Server

	ctx    context.Context // cancelled by Close: DESCRIBE waits end
	cancel context.CancelFunc

	// The direct path's counts (tcpreader.go): readers on it now, their
	// writes and the RTP packets in them.
	directReaders           atomic.Int64
	directWrites, directRTP atomic.Uint64

	mu        sync.Mutex
	sessions  int
	perIP     map[netip.Addr]int
	describes map[*gortsplib.ServerConn]*described
}

// New starts the server's listeners.
func New(cfg Config, d Deps) (*Server, error) {
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.WriteQueue <= 0 {
		cfg.WriteQueue = 512
	}
	if d.Auth == nil {
		d.Auth = auth.AllowAll{}
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	s := &Server{cfg: cfg, deps: d, log: d.Log.With("edge", "rtsp"),
		perIP: make(map[netip.Addr]int), describes: make(map[*gortsplib.ServerConn]*described)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if cfg.Listen != "" {
		s.plain = s.newServer(cfg.Listen, nil)
		if cfg.UDPRTPPort != 0 || cfg.UDPRTCPPort != 0 {
			host, _, err := net.SplitHostPort(cfg.Listen)
			if err != nil {
				return nil, fmt.Errorf("rtsp.listen %q: %w", cfg.Listen, err)
			}
			s.plain.UDPRTPAddress = net.JoinHostPort(host, strconv.Itoa(cfg.UDPRTPPort))
			s.plain.UDPRTCPAddress = net.JoinHostPort(host, strconv.Itoa(cfg.UDPRTCPPort))
		}
		if err := s.plain.Start(); err != nil {
			return nil, fmt.Errorf("rtsp.listen %s: %w", cfg.Listen, err)
		}
	}
	if cfg.TLSListen != "" {
		if cfg.TLS == nil {
			s.Close()
			return nil, errors.New("rtsp.tls_listen needs rtsp.tls_cert and rtsp.tls_key")
		}
		s.secure = s.newServer(cfg.TLSListen, cfg.TLS)
		if err := s.secure.Start(); err != nil {
			s.secure = nil
			s.Close()
			return nil, fmt.Errorf("rtsp.tls_listen %s: %w", cfg.TLSListen, err)
		}
	}
	return s, nil
}

func (s *Server) newServer(addr string, tlsCfg *tls.Config) *gortsplib.Server {
	h := &handler{s: s}
	h.srv = &gortsplib.Server{
		Handler:        h,
		RTSPAddress:    addr,
		TLSConfig:      tlsCfg,
		ReadTimeout:    s.cfg.ReadTimeout,
		WriteTimeout:   s.cfg.WriteTimeout,
		WriteQueueSize: s.cfg.WriteQueue,
		// The token is the password, sent as Basic, or as Digest (MD5,
		// which ffmpeg answers) checked against the tokens the server
		// knows; OnResponse offers Digest only while there are some.
		AuthMethods: []rtspauth.VerifyMethod{rtspauth.VerifyMethodBasic, rtspauth.VerifyMethodDigestMD5},
		// Connections whose writes a TCP reader can share (tcpconn.go).
		Listen:    s.listen,
		TLSListen: s.listenTLS,
	}
	return h.srv
}

// Addr is the plain RTSP listener's address, nil when off.
func (s *Server) Addr() net.Addr {
	if s.plain == nil {
		return nil
	}
	return s.plain.NetListener().Addr()
}

// TLSAddr is the RTSPS listener's address, nil when off.
func (s *Server) TLSAddr() net.Addr {
	if s.secure == nil {
		return nil
	}
	return s.secure.NetListener().Addr()
}

// Close ends every session and releases the ports; it returns once every
// goroutine of the server has.
func (s *Server) Close() {
	s.cancel()
	if s.plain != nil {
		s.plain.Close()
	}
	if s.secure != nil {
		s.secure.Close()
	}
}

// reserve takes a session slot for the client address.
func (s *Server) reserve(ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.MaxSessions > 0 && s.sessions >= s.cfg.MaxSessions {
		return fmt.Errorf("%w (%d)", errTooManySessions, s.cfg.MaxSessions)
	}
	if s.cfg.MaxSessionsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxSessionsPerIP {
		return fmt.Errorf("%w (%d)", errTooManyFromIP, s.cfg.MaxSessionsPerIP)
	}
	s.sessions++
	s.perIP[ip]++
	return nil
}

func (s *Server) release(ip netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions--
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}
