// Package server wires sluice together: the WebRTC engine, the hub and the
// HTTP edge, started by New and stopped by Close.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/cluster"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/edge"
	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/forward"
	"github.com/sluice-media/sluice/internal/hls"
	"github.com/sluice-media/sluice/internal/httpapi"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/record"
	"github.com/sluice-media/sluice/internal/reorder"
	"github.com/sluice-media/sluice/internal/rtc"
	"github.com/sluice-media/sluice/internal/rtmp"
	"github.com/sluice-media/sluice/internal/rtsp"
	"github.com/sluice-media/sluice/internal/snapshot"
	"github.com/sluice-media/sluice/internal/sources"
	"github.com/sluice-media/sluice/internal/srt"
	"github.com/sluice-media/sluice/internal/tap"
	"github.com/sluice-media/sluice/internal/transcode"
	"github.com/sluice-media/sluice/internal/webhook"
	"github.com/sluice-media/sluice/internal/whep"
	"github.com/sluice-media/sluice/internal/whip"
)

// shutdownGrace bounds how long Close waits for in-flight HTTP requests;
// sessions are closed after that, so Close returns well within 5 s.
const shutdownGrace = 2 * time.Second

// offerWriteTime is added to the read timeout for writing a response: an
// offer's answer waits for ICE gathering.
const offerWriteTime = 15 * time.Second

// Server is a running sluice.
type Server struct {
	log     *slog.Logger
	ready   *metrics.Readiness
	admin   *http.Server
	adminLn net.Listener
	bus     *events.Bus
	hooks   []*webhook.Hook
	engine  *rtc.Engine
	hub     *hub.Hub
	derive  *tap.Transcoders // every audio transcoder: derived tracks of the streams
	api     *httpapi.API
	hls     *hls.Server     // nil when hls.enabled is false
	rec     *record.Manager // recording rules and switches
	httpSrv *http.Server
	ln      net.Listener
	served  chan error

	cluster *cluster.Cluster // nil in single-node mode
	rtsp    *rtsp.Server     // nil when rtsp.listen and rtsp.tls_listen are empty
	sources *sources.Supervisor
	rtmp    *rtmp.Server // nil when rtmp.enabled is false
	srt     *srt.Server  // nil when srt.enabled is false
	fwd     *forward.Forwarder

	reloadMu sync.Mutex    // one Reload at a time
	cfg      config.Config // the running config, as Reload last applied it
	authz    *swapAuth
}

// New validates cfg, binds the HTTP listener and the WebRTC ports and starts
// serving.
func New(cfg config.Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rules, err := auth.New(cfg.Auth, nil)
	if err != nil {
		return nil, err
	}
	authz := newSwapAuth(rules, cfg.Auth)
	trusted, err := config.Prefixes(cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("http.trusted_proxies: %w", err)
	}
	exempt, err := config.Prefixes(cfg.Limits.PerIPExempt)
	if err != nil {
		return nil, fmt.Errorf("limits.per_ip_exempt: %w", err)
	}
	var tlsCfg *tls.Config
	if cfg.HTTP.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCert, cfg.HTTP.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("http.tls_cert/http.tls_key: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	engine, err := rtc.New(engineConfig(cfg.WebRTC), log)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		_ = engine.Close()
		return nil, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	bus := events.NewBus()
	m := metrics.New(metrics.Config{PerStreamLabels: cfg.Metrics.PerStreamLabels})
	ready := metrics.NewReadiness()
	// AAC and G.711 tracks get an Opus track for WebRTC viewers (Opus and
	// AAC ones PCMU and PCMA tracks for viewers offering only G.711), Opus
	// and G.711 tracks an AAC track for LL-HLS, recordings, RTMP and SRT
	// readers and forwards, each written by one transcoder per stream
	// while its consumers read it.
	derive := tap.NewTranscoders(tap.TranscodersConfig{Opus: transcode.OpusConfig{Bitrate: cfg.Transcode.OpusBitrate},
		AAC: transcode.Config{Bitrate: cfg.Transcode.AACBitrate}, IdleClose: cfg.Transcode.IdleClose, Always: cfg.Transcode.Always,
		Lag: func(stream string) tap.Gauge { return m.TranscoderLag(stream) }, Log: log})
	h := hub.New(hub.Config{
		Deriver:             derive,
		RingPackets:         cfg.Stream.RingPackets,
		PLIMinInterval:      cfg.Stream.PLIMinInterval,
		MaxViewersPerStream: cfg.Limits.MaxViewersPerStream,
		ReconnectGrace:      cfg.Stream.ReconnectGrace,
	})
	cl, err := joinCluster(cfg, ln.Addr(), tlsCfg != nil, h, engine, log)
	if err != nil {
		_ = ln.Close()
		_ = engine.Close()
		derive.Close()
		return nil, err
	}
	var clusterAPI httpapi.Cluster // stays a nil interface in single-node mode
	if cl != nil {
		clusterAPI = cl
	}
	// LL-HLS and recording read the hub like viewers, on cursors of their
	// own, one per stream that both share.
	taps := tap.NewPool()
	var hlsSrv *hls.Server
	var hlsOut httpapi.HLSServer // stays a nil interface when HLS is off
	if cfg.HLS.Enabled {
		hlsSrv = hls.New(hls.Config{Always: cfg.HLS.Always, SegmentDuration: cfg.HLS.SegmentDuration,
			PartDuration: cfg.HLS.PartDuration, SegmentCount: cfg.HLS.SegmentCount, CloseAfter: cfg.HLS.CloseAfter,
			Taps: taps}, h, log)
		hlsOut = hlsSrv
	}
	rec := record.New(record.Config{Rules: cfg.Record.Rules, Taps: taps}, h, log)
	m.SetOutputs(func() metrics.Outputs { return outputCounts(hlsSrv, rec) })
	fwd := forward.New(forward.Config{Rules: cfg.Forward, Hub: h, Taps: taps, Log: log})
	if err := m.Register(fwd.Collector()); err != nil {
		log.Warn("forward metrics", "err", err)
	}
	srcs := startSources(cfg, h, engine, m, log)
	if cl != nil {
		m.SetCluster(func() metrics.Cluster { return clusterCounts(cl) })
	}
	edges := edge.NewTable() // the RTMP and SRT sessions, for the API
	api := httpapi.New(httpapi.Config{
		CORSOrigin:          cfg.HTTP.CORSOrigin,
		MaxBodyBytes:        cfg.HTTP.MaxBodyBytes,
		MaxSessions:         cfg.Limits.MaxSessions,
		MaxSessionsPerIP:    cfg.Limits.MaxSessionsPerIP,
		TrustedProxies:      trusted,
		PerIPExempt:         exempt,
		PublisherTakeover:   cfg.Stream.PublisherTakeover,
		ICEServers:          linkICEServers(cfg.HTTP.ICEServers),
		ICEServersOnOptions: cfg.HTTP.ICEServersOnOptions,
		Metrics:             m,
		Ready:               ready,
		HLS:                 hlsOut,
		Recordings:          rec,
		Library:             rec,
		Snapshots:           snapshot.New(snapshot.Config{}, h),
		PlaybackMaxDuration: cfg.Playback.MaxDuration,
		Cluster:             clusterAPI,
		Forwards:            fwd,
		Sources:             srcs,
		SourceEditor:        sourceEditor{srcs},
		Edges:               edges,
	}, log, authz, bus,
		whip.Deps{Peers: engine, Hub: h, ConnectTimeout: cfg.WebRTC.ConnectTimeout, Log: log, Metrics: m,
			Ingest: ingestOptions(cfg.Stream), VideoCodecs: cfg.WebRTC.VideoCodecs, Detach: cfg.WebRTC.DetachPublishers},
		whep.Deps{Peers: engine, Hub: h, ConnectTimeout: cfg.WebRTC.ConnectTimeout, ReadyTimeout: cfg.Stream.ReadyTimeout,
			WaitForPublisher: cfg.Stream.WaitForPublisher, Log: log, Metrics: m, Fanout: whep.NewFanout(),
			Detach: cfg.WebRTC.DetachViewers},
	)
	s := &Server{
		log: log, bus: bus, engine: engine, hub: h, api: api, hls: hlsSrv, rec: rec, ln: ln, served: make(chan error, 1),
		httpSrv: &http.Server{
			Handler:           api.Handler(),
			ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
			ReadTimeout:       cfg.HTTP.ReadTimeout,
			// A viewer of a source may wait for it to connect (ready_timeout).
			WriteTimeout:   cfg.HTTP.ReadTimeout + offerWriteTime + cfg.Stream.WaitForPublisher + cfg.Stream.ReadyTimeout,
			IdleTimeout:    cfg.HTTP.IdleTimeout,
			TLSConfig:      tlsCfg,
			MaxHeaderBytes: 16 << 10,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	s.cluster = cl
	s.fwd = fwd
	s.cluster, s.derive = cl, derive
	s.sources, s.cfg, s.authz = srcs, cfg, authz
	for _, hc := range cfg.Events.Webhooks {
		hook := webhook.Start(hc, bus, nil, log)
		m.AddWebhook(hook)
		s.hooks = append(s.hooks, hook)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		s.ln = ln
	}
	go func() { s.served <- s.httpSrv.Serve(ln) }()
	if s.rtsp, err = startRTSP(cfg, h, authz, srcs, log); err != nil {
		_ = s.Close()
		return nil, err
	}
	if cfg.Admin.Listen != "" {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			_ = s.Close()
			return nil, fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		// No WriteTimeout: /debug/pprof/profile runs for 30 s.
		s.admin = &http.Server{Handler: metrics.AdminHandler(m, ready), ReadHeaderTimeout: 10 * time.Second}
		s.adminLn = aln
		go func() { _ = s.admin.Serve(aln) }()
	}
	if err := s.startEdges(cfg, authz, taps, edges); err != nil {
		_ = s.Close()
		return nil, err
	}
	s.ready = ready
	ready.SetReady()
	log.Info("sluice listening", "http", ln.Addr().String(), "udp", fmt.Sprint(engine.UDPAddrs()), "tcp", fmt.Sprint(engine.TCPAddr()))
	return s, nil
}

// RTSPAddr is the plain RTSP listener's address, nil when it is off.
func (s *Server) RTSPAddr() net.Addr {
	if s.rtsp == nil {
		return nil
	}
	return s.rtsp.Addr()
}

// RTSPSAddr is the RTSPS listener's address, nil when it is off.
func (s *Server) RTSPSAddr() net.Addr {
	if s.rtsp == nil {
		return nil
	}
	return s.rtsp.TLSAddr()
}

// HTTPAddr is the address the HTTP server listens on.
func (s *Server) HTTPAddr() net.Addr { return s.ln.Addr() }

// UDPAddrs are the addresses of the shared WebRTC UDP port.
func (s *Server) UDPAddrs() []net.Addr { return s.engine.UDPAddrs() }

// Events is the server's event bus (publish/unpublish/join/leave/failed).
func (s *Server) Events() *events.Bus { return s.bus }

// Hub is the server's stream registry.
func (s *Server) Hub() *hub.Hub { return s.hub }

// AdminAddr is the admin listener's address, or nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	if s.adminLn == nil {
		return nil
	}
	return s.adminLn.Addr()
}

// Sessions is the number of open WHIP and WHEP sessions.
func (s *Server) Sessions() int { return s.api.Sessions() }

// Close stops accepting requests, ends every session and releases the
// ports. It returns within a few seconds even with requests in flight.
func (s *Server) Close() error {
	if s.ready != nil {
		s.ready.SetNotReady("shutting down")
	}
	if s.hls != nil {
		s.hls.Close() // first: it answers the playlist requests that wait on it
	}
	s.closeEdges()
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := s.httpSrv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.httpSrv.Close()
	}
	if s.rtsp != nil {
		s.rtsp.Close() // its publishers detach like WHIP's
	}
	s.sources.Close() // the pulls end their streams
	s.api.CloseAll()
	if s.cluster != nil {
		s.cluster.Close() // after the publishers, which release their streams
	}
	s.rec.Close() // after the sessions: recorders close their files as their streams end
	s.derive.Close()
	for _, h := range s.hooks {
		h.Close()
	}
	err = errors.Join(err, s.engine.Close())
	if s.admin != nil {
		_ = s.admin.Close()
	}
	if serveErr := <-s.served; !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	s.log.Info("sluice stopped")
	return err
}

// outputCounts reads the outputs' counters for the metrics; hlsSrv is nil
// when HLS is off.
func outputCounts(hlsSrv *hls.Server, rec *record.Manager) metrics.Outputs {
	tc, rs := transcode.Counts(), rec.Stats()
	by := map[[2]string]int{}
	for d, n := range tc.ByDirection {
		by[[2]string{d.From, d.To}] = n
	}
	o := metrics.Outputs{Transcoders: tc.ByDirection[transcode.Direction{From: "opus", To: "aac"}], TranscodersBy: by, TranscodedAudio: tc.AudioSeconds, TranscodeErrors: tc.Errors,
		Recorders: int(rs.Recording), RecordFiles: rs.Files, RecordBytes: rs.Bytes, RecordErrors: rs.Errors,
		RecordRemoved: rs.Removed}
	if hlsSrv != nil {
		hs := hlsSrv.Stats()
		o.HLSMuxers, o.HLSSegments = hs.Muxers, hs.Segments
	}
	return o
}

// ingestOptions is how every source's tracks are taken in: the one place
// the stream settings become ingest's options.
func ingestOptions(c config.Stream) ingest.Options {
	return ingest.Options{
		Reorder:     reorder.Config{Packets: c.ReorderPackets, MaxDelay: c.ReorderDelay},
		PLIInterval: c.PLIInterval,
	}
}

// startRTSP starts the RTSP server, or returns nil when both its listeners
// are off.
func startRTSP(cfg config.Config, h *hub.Hub, authz *swapAuth, srcs rtsp.Demander, log *slog.Logger) (*rtsp.Server, error) {
	if cfg.RTSP.Listen == "" && cfg.RTSP.TLSListen == "" {
		return nil, nil
	}
	rc := rtsp.Config{
		Listen: cfg.RTSP.Listen, UDPRTPPort: cfg.RTSP.UDPRTPPort, UDPRTCPPort: cfg.RTSP.UDPRTCPPort,
		TLSListen: cfg.RTSP.TLSListen, ReadyTimeout: cfg.Stream.ReadyTimeout,
		MaxSessions: cfg.Limits.MaxSessions, MaxSessionsPerIP: cfg.Limits.MaxSessionsPerIP,
	}
	if cfg.RTSP.TLSListen != "" {
		cert, err := tls.LoadX509KeyPair(cfg.RTSP.TLSCert, cfg.RTSP.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("rtsp.tls_cert/rtsp.tls_key: %w", err)
		}
		rc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	return rtsp.New(rc, rtsp.Deps{Hub: h, Auth: authz, Log: log, Sources: srcs, Ingest: ingestOptions(cfg.Stream),
		DigestTokens: authz.tokens})
}
