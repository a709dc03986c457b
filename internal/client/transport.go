package client

import (
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/webrtc/v4"
)

// WrapConn wraps the UDP socket a Publisher or Viewer sends and receives
// all its media on (STUN, DTLS, SRTP, SRTCP), for tests that impair the
// network: drop or reorder packets on one leg, deterministically.
type WrapConn func(net.PacketConn) net.PacketConn

// apiExtras are the optional parts of newAPI: in, what to change; out, what
// the caller must close.
type apiExtras struct {
	wrap            WrapConn
	noSenderReports bool
	twcc            bool // send transport-wide congestion feedback
	twccSender      bool // number packets for the peer's TWCC feedback
	simulcast       bool // MID and RID header extensions
	tcp             bool // ICE over TCP only (active candidates)

	closer io.Closer // the UDP mux over the wrapped socket, when wrap is set
}

// configureReports registers RTCP receiver reports and, unless the caller
// writes its own, sender reports.
func configureReports(ir *interceptor.Registry, x *apiExtras) error {
	if x == nil || !x.noSenderReports {
		return webrtc.ConfigureRTCPReports(ir)
	}
	rr, err := report.NewReceiverInterceptor()
	if err != nil {
		return err
	}
	ir.Add(rr)
	return nil
}

// wrapSocket binds one UDP socket on the first allowed address, wraps it
// and makes ICE use only it (through a UDP mux): every packet of the
// PeerConnection goes through the wrapper.
func wrapSocket(se *webrtc.SettingEngine, allowed []net.IP, x *apiExtras) error {
	if len(allowed) == 0 {
		return errors.New("WrapConn needs LocalIPs or a loopback endpoint")
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: allowed[0]})
	if err != nil {
		return fmt.Errorf("wrapped socket: %w", err)
	}
	mux := ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: x.wrap(conn)})
	se.SetICEUDPMux(mux)
	if allowed[0].To4() != nil {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	}
	x.closer = mux
	return nil
}
