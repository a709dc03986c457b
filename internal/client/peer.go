package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/webrtc/v4"
)

// maxNACKsPerPacket bounds how often a client asks for one lost packet.
const maxNACKsPerPacket = 4

// newAPI builds the pion API for one PeerConnection: the given codecs, NACK
// and RTCP reports, UDP only (or TCP only, see apiExtras), no mDNS. When localIPs is empty and the
// endpoint's host is a loopback address, only loopback candidates are
// gathered, so that tests over 127.0.0.1 do not probe every interface.
// extra, if given, wraps the socket or leaves out sender reports (see
// apiExtras); its closer must be closed after the PeerConnection.
func newAPI(endpoint string, localIPs []string, me *webrtc.MediaEngine, extra ...*apiExtras) (*webrtc.API, error) {
	var x *apiExtras
	if len(extra) > 0 {
		x = extra[0]
	}
	ir := &interceptor.Registry{}
	// NACK generator and responder as webrtc.ConfigureNack sets them up,
	// but without adding "nack pli" to every codec: the codecs registered
	// say what feedback is offered. pion's generator never sees packets
	// repaired over RTX (they come on the RTX SSRC), so it would ask for
	// them until they leave its window; a few NACKs per packet are enough.
	gen, err := nack.NewGeneratorInterceptor(nack.GeneratorMaxNacksPerPacket(maxNACKsPerPacket))
	if err != nil {
		return nil, err
	}
	resp, err := nack.NewResponderInterceptor()
	if err != nil {
		return nil, err
	}
	ir.Add(resp)
	ir.Add(gen)
	if err := configureReports(ir, x); err != nil {
		return nil, err
	}
	if x != nil && x.twcc {
		// Transport-wide congestion feedback, as browsers send it.
		if err := webrtc.ConfigureTWCCSender(me, ir); err != nil {
			return nil, err
		}
	}
	if x != nil && x.twccSender {
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(me, ir); err != nil {
			return nil, err
		}
	}
	if x != nil && x.simulcast {
		if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
			return nil, err
		}
	}

	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if x != nil && x.tcp {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6})
	}

	allowed, err := candidateIPs(endpoint, localIPs)
	if err != nil {
		return nil, err
	}
	if allowed != nil {
		for _, ip := range allowed {
			if ip.IsLoopback() {
				se.SetIncludeLoopbackCandidate(true)
			}
		}
		se.SetIPFilter(func(ip net.IP) bool {
			for _, a := range allowed {
				if a.Equal(ip) {
					return true
				}
			}
			return false
		})
	}
	if x != nil && x.wrap != nil {
		if err := wrapSocket(&se, allowed, x); err != nil {
			return nil, err
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// candidateIPs returns the addresses ICE may gather on, or nil for all.
func candidateIPs(endpoint string, localIPs []string) ([]net.IP, error) {
	if len(localIPs) > 0 {
		ips := make([]net.IP, 0, len(localIPs))
		for _, s := range localIPs {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, fmt.Errorf("bad local IP %q", s)
			}
			ips = append(ips, ip)
		}
		return ips, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	if host == "localhost" {
		return []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return []net.IP{ip}, nil
	}
	return nil, nil
}

// negotiate posts the offer and applies the answer. Without trickle it
// gathers every candidate first and the offer carries them all; with
// trickle the offer goes out before gathering, without candidates, and each
// candidate follows in a PATCH, then a=end-of-candidates (RFC 9725 §4.4.1).
func negotiate(ctx context.Context, pc *webrtc.PeerConnection, o signalOptions) (*Session, error) {
	var q *candidateQueue
	if o.trickle {
		q = newCandidateQueue(pc) // before gathering can start
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return nil, fmt.Errorf("create offer: %w", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return nil, fmt.Errorf("set local description: %w", err)
	}
	sdp := offer.SDP // CreateOffer ran before gathering: no candidates
	if !o.trickle {
		select {
		case <-gathered:
		case <-ctx.Done():
			return nil, fmt.Errorf("ICE gathering: %w", ctx.Err())
		}
		sdp = pc.LocalDescription().SDP
	}
	if o.munge != nil {
		sdp = o.munge(sdp)
	}
	hc := o.httpClient
	if hc == nil {
		hc = newHTTPClient()
	}
	s, answer, err := Offer(ctx, hc, o.url, Bearer(o.token), sdp)
	if err != nil {
		return nil, err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return s, fmt.Errorf("set answer: %w", err)
	}
	if o.trickle {
		if err := trickle(ctx, s, sdp, q); err != nil {
			return s, fmt.Errorf("trickle ICE: %w", err)
		}
	}
	return s, nil
}

type signalOptions struct {
	url        string
	token      string
	httpClient *http.Client
	trickle    bool
	munge      func(sdp string) string // changes the offer before it is sent
}

// connState follows a PeerConnection's state: connected is closed when it
// first connects, ended when it is closed, failed or disconnected.
type connState struct {
	connected chan struct{}
	ended     chan struct{}
	once1     sync.Once
	once2     sync.Once
}

func watchState(pc *webrtc.PeerConnection) *connState {
	c := &connState{connected: make(chan struct{}), ended: make(chan struct{})}
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			c.once1.Do(func() { close(c.connected) })
		case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
			c.end()
		}
	})
	return c
}

// end closes ended. Close calls it too: pion reports state changes from
// its own goroutines, possibly after Close has returned.
func (c *connState) end() { c.once2.Do(func() { close(c.ended) }) }

var errEnded = errors.New("connection ended before it was established")

// waitConnected blocks until the connection is up, has ended, or ctx is done.
func (c *connState) waitConnected(ctx context.Context) error {
	select {
	case <-c.connected:
		return nil
	case <-c.ended:
		return errEnded
	case <-ctx.Done():
		return fmt.Errorf("waiting for ICE/DTLS: %w", ctx.Err())
	}
}
