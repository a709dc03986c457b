// Package rtc builds pion PeerConnections for sluice: one UDP port (and
// optionally one TCP port) shared by every session, one DTLS certificate,
// the codecs sluice accepts and the interceptors each side needs.
package rtc

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v5/stdnet"
	"github.com/pion/webrtc/v4"
)

// Config is the engine's share of the configuration: where ICE listens and
// what it announces. The server fills it from config.WebRTC; the engine
// imports no configuration package, so it links nothing of the outputs.
type Config struct {
	UDPPort    int         // the one UDP port every session shares; 0: the OS picks
	TCPEnabled bool        // ICE-TCP on one TCP port too
	TCPPort    int         // ICE-TCP's port; 0: the OS picks
	ListenIPs  []string    // IP literals to listen on; empty: every interface, loopback included
	NAT1To1IPs []string    // IP literals announced as host candidates instead of the local ones
	ICEServers []ICEServer // STUN/TURN servers the engine gathers srflx/relay candidates from
	// Consent ends a connected session whose peer sent nothing for this
	// long: pion's ICE disconnected and failed timeouts together, and a
	// detached connection's consent (detach.go); 0 means ConsentTimeout.
	Consent time.Duration
}

// ICEServer is one STUN or TURN server, as in the W3C RTCIceServer
// dictionary.
type ICEServer struct {
	URLs       []string // stun:, stuns:, turn: or turns: URLs
	Username   string
	Credential string
}

// Engine owns the shared sockets and settings every PeerConnection uses.
type Engine struct {
	settings   webrtc.SettingEngine
	cert       webrtc.Certificate
	iceServers []webrtc.ICEServer
	udpMux     *ice.MultiUDPMuxDefault
	net        *batchNet
	tcpMux     ice.TCPMux
	tcpLn      net.Listener

	// Connections detached from pion (detach.go), whose ICE consent a
	// goroutine started with the first one checks until done closes;
	// Close waits for it (consent).
	detached       sync.Map // *Direct → struct{}
	consentOnce    sync.Once
	consent        sync.WaitGroup
	consentTimeout time.Duration
	done           chan struct{}
}

// New binds the UDP port (and TCP port, if enabled) on the configured IPs.
func New(cfg Config, log *slog.Logger) (*Engine, error) {
	e := &Engine{done: make(chan struct{}), consentTimeout: cfg.Consent}
	if e.consentTimeout <= 0 {
		e.consentTimeout = ConsentTimeout
	}
	loggers := newSharedLoggers(log)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("dtls key: %w", err)
	}
	cert, err := webrtc.GenerateCertificate(key)
	if err != nil {
		return nil, fmt.Errorf("dtls certificate: %w", err)
	}
	e.cert = *cert

	ips, err := parseIPs(cfg.ListenIPs)
	if err != nil {
		return nil, fmt.Errorf("webrtc.listen_ips: %w", err)
	}
	e.net, err = newBatchNet()
	if err != nil {
		return nil, fmt.Errorf("network interfaces: %w", err)
	}
	// One view of the network interfaces for every ICE agent: without
	// it each PeerConnection's agent lists them again (netlink dumps on
	// Linux) and keeps its own copy, about 5 KB per session. Not the
	// batched net: what agents listen on themselves (STUN, TURN) stays
	// theirs.
	agentNet, err := stdnet.NewNet()
	if err != nil {
		return nil, fmt.Errorf("network interfaces: %w", err)
	}
	opts := []ice.UDPMuxFromPortOption{
		ice.UDPMuxFromPortWithNet(e.net),
		ice.UDPMuxFromPortWithLoopback(),
		ice.UDPMuxFromPortWithLogger(loggers.NewLogger("udpmux")),
		ice.UDPMuxFromPortWithReadBufferSize(4 << 20),
		ice.UDPMuxFromPortWithWriteBufferSize(4 << 20),
		ice.UDPMuxFromPortWithNetworks(udpNetworks(ips)...),
	}
	if len(ips) > 0 {
		opts = append(opts, ice.UDPMuxFromPortWithIPFilter(func(ip net.IP) bool {
			return slices.ContainsFunc(ips, ip.Equal)
		}))
	}
	e.udpMux, err = ice.NewMultiUDPMuxFromPort(cfg.UDPPort, opts...)
	if err != nil {
		return nil, fmt.Errorf("webrtc.udp_port %d: %w", cfg.UDPPort, err)
	}
	if len(e.udpMux.GetListenAddresses()) == 0 {
		_ = e.udpMux.Close()
		return nil, errors.New("webrtc.listen_ips: no local address matches")
	}

	s := webrtc.SettingEngine{LoggerFactory: loggers}
	s.SetNet(agentNet)
	s.SetICEUDPMux(e.udpMux)
	s.SetIncludeLoopbackCandidate(true)
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// Disconnected after a third of the consent timeout, failed after
	// the rest (5 s and 10 s for the default 15 s).
	s.SetICETimeouts(e.consentTimeout/3, e.consentTimeout-e.consentTimeout/3, 2*time.Second)
	nets := networks(ips, false)
	if cfg.TCPEnabled {
		host := ""
		if len(ips) == 1 {
			host = ips[0].String()
		}
		e.tcpLn, err = net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(cfg.TCPPort)))
		if err != nil {
			_ = e.udpMux.Close()
			return nil, fmt.Errorf("webrtc.tcp_port %d: %w", cfg.TCPPort, err)
		}
		e.tcpMux = webrtc.NewICETCPMux(loggers.NewLogger("tcpmux"), e.tcpLn, 64)
		s.SetICETCPMux(e.tcpMux)
		nets = append(nets, networks(ips, true)...)
	}
	s.SetNetworkTypes(nets)
	if len(ips) > 0 {
		s.SetIPFilter(func(ip net.IP) bool { return slices.ContainsFunc(ips, ip.Equal) })
	}
	if len(cfg.NAT1To1IPs) > 0 {
		s.SetNAT1To1IPs(cfg.NAT1To1IPs, webrtc.ICECandidateTypeHost)
	}
	e.settings = s

	for _, srv := range cfg.ICEServers {
		e.iceServers = append(e.iceServers, webrtc.ICEServer{
			URLs: srv.URLs, Username: srv.Username, Credential: srv.Credential,
		})
	}
	return e, nil
}

// selectedPair is a PeerConnection's selected ICE candidate pair with
// both candidates, or nil.
func selectedPair(pc *webrtc.PeerConnection) *webrtc.ICECandidatePair {
	sctp := pc.SCTP()
	if sctp == nil {
		return nil
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return nil
	}
	return pair
}

// candidateAddr is a candidate's address and port, IPv4 unmapped.
func candidateAddr(c *webrtc.ICECandidate) (netip.AddrPort, bool) {
	ip, err := netip.ParseAddr(c.Address)
	if err != nil {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ip.Unmap(), c.Port), true
}

// UDPAddrs are the addresses the shared UDP port listens on.
func (e *Engine) UDPAddrs() []net.Addr { return e.udpMux.GetListenAddresses() }

// TCPAddr is the ICE-TCP listener's address, or nil when ICE-TCP is off.
func (e *Engine) TCPAddr() net.Addr {
	if e.tcpLn == nil {
		return nil
	}
	return e.tcpLn.Addr()
}

// Close releases the shared sockets. Sessions must be closed first.
func (e *Engine) Close() error {
	close(e.done)
	e.consent.Wait()
	err := e.udpMux.Close()
	if e.tcpMux != nil {
		err = errors.Join(err, e.tcpMux.Close())
	}
	return err
}

func (e *Engine) newPeerConnection(s webrtc.SettingEngine, m *webrtc.MediaEngine, ir *interceptor.Registry) (*webrtc.PeerConnection, error) {
	api := webrtc.NewAPI(
		webrtc.WithSettingEngine(s),
		webrtc.WithMediaEngine(m),
		webrtc.WithInterceptorRegistry(ir),
	)
	return api.NewPeerConnection(webrtc.Configuration{
		ICEServers:   e.iceServers,
		Certificates: []webrtc.Certificate{e.cert},
		BundlePolicy: webrtc.BundlePolicyMaxBundle,
	})
}

func parseIPs(list []string) ([]net.IP, error) {
	ips := make([]net.IP, 0, len(list))
	for _, s := range list {
		ip := net.ParseIP(s)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// networks lists the ICE network types that the listen IPs call for: both
// families when no IP is given.
func networks(ips []net.IP, tcp bool) []webrtc.NetworkType {
	v4, v6 := len(ips) == 0, len(ips) == 0
	for _, ip := range ips {
		if ip.To4() != nil {
			v4 = true
		} else {
			v6 = true
		}
	}
	var out []webrtc.NetworkType
	switch {
	case tcp && v4:
		out = append(out, webrtc.NetworkTypeTCP4)
	case v4:
		out = append(out, webrtc.NetworkTypeUDP4)
	}
	switch {
	case tcp && v6:
		out = append(out, webrtc.NetworkTypeTCP6)
	case v6:
		out = append(out, webrtc.NetworkTypeUDP6)
	}
	return out
}

// udpNetworks is networks for the UDP mux, in ICE's own type.
func udpNetworks(ips []net.IP) []ice.NetworkType {
	var out []ice.NetworkType
	for _, n := range networks(ips, false) {
		if n == webrtc.NetworkTypeUDP4 {
			out = append(out, ice.NetworkTypeUDP4)
		} else {
			out = append(out, ice.NetworkTypeUDP6)
		}
	}
	return out
}
