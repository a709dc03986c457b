package server

import (
	"crypto/tls"
	"fmt"
	"net"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/edge"
	"github.com/sluice-media/sluice/internal/rtmp"
	"github.com/sluice-media/sluice/internal/srt"
	"github.com/sluice-media/sluice/internal/tap"
)

// startEdges starts the RTMP and SRT servers and the forwarder; their
// sessions count against the HTTP edge's session limits.
// The sessions are listed in the API's table, and with
// stream.publisher_takeover a new publisher ends the current one, whatever
// its protocol.
func (s *Server) startEdges(cfg config.Config, authz auth.Authenticator, taps *tap.Pool, sessions *edge.Table) error {
	var takeover func(string) bool
	if cfg.Stream.PublisherTakeover {
		takeover = s.api.KickPublisher
	}
	if cfg.RTMP.Enabled {
		var tlsCfg *tls.Config
		if cfg.RTMP.TLSListen != "" {
			cert, err := tls.LoadX509KeyPair(cfg.RTMP.TLSCert, cfg.RTMP.TLSKey)
			if err != nil {
				return fmt.Errorf("rtmp.tls_cert/rtmp.tls_key: %w", err)
			}
			tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		r, err := rtmp.New(rtmp.Config{
			Listen: cfg.RTMP.Listen, TLSListen: cfg.RTMP.TLSListen, TLS: tlsCfg,
			HandshakeTimeout: cfg.RTMP.HandshakeTimeout, ReadTimeout: cfg.RTMP.ReadTimeout, WriteTimeout: cfg.RTMP.WriteTimeout,
			Hub: s.hub, Auth: authz, Taps: taps, Admit: s.api.Reserve, Events: s.bus, Log: s.log,
			Sessions: sessions, Takeover: takeover,
		})
		if err != nil {
			return err
		}
		s.rtmp = r
		s.log.Info("rtmp listening", "addr", addrString(r.Addr()), "tls", addrString(r.TLSAddr()))
	}
	if cfg.SRT.Enabled {
		r, err := srt.New(srt.Config{
			Listen: cfg.SRT.Listen, Passphrase: cfg.SRT.Passphrase, Latency: cfg.SRT.Latency,
			HandshakeTimeout: cfg.SRT.HandshakeTimeout, ReadTimeout: cfg.SRT.ReadTimeout, WriteTimeout: cfg.SRT.WriteTimeout,
			Hub: s.hub, Auth: authz, Taps: taps, Admit: s.api.Reserve, Events: s.bus, Log: s.log,
			Sessions: sessions, Takeover: takeover,
		})
		if err != nil {
			return err
		}
		s.srt = r
		s.log.Info("srt listening", "addr", r.Addr().String())
	}
	return nil
}

// closeEdges stops the forwarder and the edges; their publishers leave
// their streams.
func (s *Server) closeEdges() {
	s.fwd.Close()
	if s.rtmp != nil {
		s.rtmp.Close()
	}
	if s.srt != nil {
		s.srt.Close()
	}
}

// SRTAddr is the SRT listener's UDP address, or nil when it is off.
func (s *Server) SRTAddr() net.Addr {
	if s.srt == nil {
		return nil
	}
	return s.srt.Addr()
}

// RTMPAddr is the RTMP listener's address, or nil when it is off.
func (s *Server) RTMPAddr() net.Addr {
	if s.rtmp == nil {
		return nil
	}
	return s.rtmp.Addr()
}

// RTMPSAddr is the RTMPS listener's address, or nil when it is off.
func (s *Server) RTMPSAddr() net.Addr {
	if s.rtmp == nil {
		return nil
	}
	return s.rtmp.TLSAddr()
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}
