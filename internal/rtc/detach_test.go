package rtc

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
)

// detachRig is a Direct detached after a real DTLS handshake (pion as the
// client), its shared socket, and the viewer's side: the DTLS client, its
// SRTCP context, and a UDP socket standing for its ICE candidate.
type detachRig struct {
	d          *Direct
	e          *Engine
	bc         *batchConn
	viewer     *net.UDPConn
	client     *dtls.Conn
	serverSock *net.UDPConn  // the DTLS server's socket
	srtcp      *srtp.Context // encrypts the viewer's RTCP
	tapped     chan []byte   // what the DTLS server's socket read
	rtcpIn     chan []byte
	moved      chan netip.AddrPort
	closed     chan error
}

// rigFlight stands for pion's last handshake datagram (ChangeCipherSpec
// and Finished).
var rigFlight = []byte{20, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 5, 0, 1, 1, 22, 0xfe, 0xfd, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0xaa, 0xbb}

const (
	rigUfrag = "sluiceufrag"
	rigPwd   = "sluicepasswordsluicepassword"
)

func newDetachRig(t *testing.T) *detachRig {
	t.Helper()
	bc := loopbackBatchConn(t)
	r := &detachRig{
		e:      &Engine{done: make(chan struct{}), consentTimeout: ConsentTimeout, net: &batchNet{conns: []*batchConn{bc}}},
		bc:     bc,
		viewer: loopbackUDP(t),
		tapped: make(chan []byte, 16),
		rtcpIn: make(chan []byte, 16),
		moved:  make(chan netip.AddrPort, 4),
		closed: make(chan error, 4),
	}
	t.Cleanup(func() { close(r.e.done) })
	r.d = &Direct{engine: r.e}
	_, client, sock := dtlsPairTapped(t, &r.d.keys, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM,
		func(b []byte) {
			select {
			case r.tapped <- b:
			default:
			}
		})
	r.client, r.serverSock = client, sock
	ctx, err := r.d.keys.context(false)
	if err != nil {
		t.Fatal(err)
	}
	r.d.ctx = ctx
	cst, _ := client.ConnectionState()
	cfg := srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}
	if err := cfg.ExtractSessionKeysFromDTLS(&cst, true); err != nil {
		t.Fatal(err)
	}
	if r.srtcp, err = srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile); err != nil {
		t.Fatal(err)
	}
	rt, err := bc.route(addrOf(r.viewer))
	if err != nil {
		t.Fatal(err)
	}
	r.d.route.Store(rt)
	// pion's final handshake flight, as it goes out through the shared
	// socket before the connection is detached.
	if _, err := bc.WriteToAddrPort(rigFlight, addrOf(r.viewer)); err != nil {
		t.Fatal(err)
	}
	bc.Flush()
	if got := readFrom(t, r.viewer, time.Second); !bytes.Equal(got, rigFlight) {
		t.Fatalf("the viewer got %x, want the flight", got)
	}
	err = r.d.Detach(DetachConfig{
		LocalUfrag: rigUfrag, LocalPwd: rigPwd,
		OnRTCP:  func(b []byte) { r.rtcpIn <- append([]byte(nil), b...) },
		OnMove:  func(a netip.AddrPort) { r.moved <- a },
		OnClose: func(err error) { r.closed <- err },
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// check is an ICE connectivity check from the viewer with the given
// credentials.
func check(t *testing.T, ufrag, pwd string, nominate bool) *stun.Message {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.BindingRequest, stun.NewUsername(ufrag + ":viewer")}
	if nominate {
		setters = append(setters, stun.RawAttribute{Type: stun.AttrUseCandidate})
	}
	setters = append(setters, stun.NewShortTermIntegrity(pwd), stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// readFrom returns the next datagram sock gets, or nil within wait.
func readFrom(t *testing.T, sock *net.UDPConn, wait time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 1500)
	_ = sock.SetReadDeadline(time.Now().Add(wait))
	n, err := sock.Read(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// response reads the STUN response sock gets, or nil within wait.
func response(t *testing.T, sock *net.UDPConn, wait time.Duration) *stun.Message {
	t.Helper()
	b := readFrom(t, sock, wait)
	if b == nil {
		return nil
	}
	m := &stun.Message{Raw: b}
	if err := m.Decode(); err != nil {
		t.Fatalf("not a STUN message: %v", err)
	}
	return m
}

// TestDetachedICE: a detached connection answers the viewer's consent
// checks made with its credentials (integrity, XOR-MAPPED-ADDRESS), not
// others; a nominated check from a new address moves the media there;
// after RestartICE it takes the new credentials, and retires the old ones
// at the first check with the new.
func TestDetachedICE(t *testing.T) {
	r := newDetachRig(t)
	req := check(t, rigUfrag, rigPwd, false)
	if !r.bc.claim(req.Raw, addrOf(r.viewer), r.bc) {
		t.Fatal("a check from the detached viewer's address was left to pion")
	}
	resp := response(t, r.viewer, 2*time.Second)
	if resp == nil || resp.Type != stun.BindingSuccess || resp.TransactionID != req.TransactionID {
		t.Fatalf("response %v, want a binding success for the check", resp)
	}
	if err := stun.NewShortTermIntegrity(rigPwd).Check(resp); err != nil {
		t.Errorf("response integrity: %v", err)
	}
	var mapped stun.XORMappedAddress
	if err := mapped.GetFrom(resp); err != nil || mapped.Port != int(addrOf(r.viewer).Port()) || !mapped.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("XOR-MAPPED-ADDRESS %v (%v), want the viewer's %v", mapped, err, addrOf(r.viewer))
	}
	r.bc.claim(check(t, rigUfrag, "wrongpasswordwrongpassword", false).Raw, addrOf(r.viewer), r.bc)
	if m := response(t, r.viewer, 300*time.Millisecond); m != nil {
		t.Errorf("a check with the wrong password got %v", m.Type)
	}

	// A NAT's new mapping: a nominated check with the current
	// credentials from an address the connection has never seen.
	nat := loopbackUDP(t)
	if !r.bc.claim(check(t, rigUfrag, rigPwd, true).Raw, addrOf(nat), r.bc) {
		t.Fatal("a nominated check from a new address was left to pion")
	}
	if m := response(t, nat, 2*time.Second); m == nil || m.Type != stun.BindingSuccess {
		t.Fatalf("the check from the new address got %v, want a binding success", m)
	}
	if a := <-r.moved; a != addrOf(nat) {
		t.Fatalf("moved to %v, want %v", a, addrOf(nat))
	}

	answer := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:" + rigUfrag + "\r\na=ice-pwd:" + rigPwd + "\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=candidate:2 1 tcp 1671430143 127.0.0.1 5001 typ host tcptype passive\r\n" +
		"a=end-of-candidates\r\n"
	frag, err := r.d.RestartICE(answer)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFragment(frag)
	if err != nil {
		t.Fatalf("answer fragment %q: %v", frag, err)
	}
	if f.Ufrag == rigUfrag || f.Pwd == rigPwd || len(f.Candidates) != 1 || !bytes.Contains([]byte(f.Candidates[0].Candidate), []byte(" udp ")) {
		t.Fatalf("answer fragment %q: want new credentials and the UDP candidate only", frag)
	}

	// The viewer's new candidate: a socket the connection has never seen.
	moved := loopbackUDP(t)
	if !r.bc.claim(check(t, f.Ufrag, f.Pwd, true).Raw, addrOf(moved), r.bc) {
		t.Fatal("a check with the restart's credentials from a new address was left to pion")
	}
	if m := response(t, moved, 2*time.Second); m == nil || m.Type != stun.BindingSuccess {
		t.Fatalf("the restart's check got %v, want a binding success", m)
	}
	select {
	case a := <-r.moved:
		if a != addrOf(moved) {
			t.Errorf("moved to %v, want %v", a, addrOf(moved))
		}
	case <-time.After(time.Second):
		t.Fatal("a nominated check from a new address did not move the media")
	}
	if got := r.d.route.Load().addr; got != addrOf(moved) {
		t.Errorf("route %v, want %v", got, addrOf(moved))
	}
	// The old credentials are done once the viewer used the new ones.
	r.bc.claim(check(t, rigUfrag, rigPwd, false).Raw, addrOf(moved), r.bc)
	if m := response(t, moved, 300*time.Millisecond); m != nil {
		t.Errorf("a check with the credentials before the restart got %v", m.Type)
	}
}

// TestDetachedRTCPAndWrites: the viewer's SRTCP reaches OnRTCP decrypted
// (a tampered packet is left to pion); what pion writes while ClosePeer
// closes it is dropped, while the direct path's RTP and RTCP arrive; what
// is not the viewer's stays pion's; after Release everything is.
func TestDetachedRTCPAndWrites(t *testing.T) {
	r := newDetachRig(t)
	pli, _ := (&rtcp.PictureLossIndication{SenderSSRC: 7, MediaSSRC: 9}).Marshal()
	sealed, err := r.srtcp.EncryptRTCP(nil, pli, nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), sealed...)
	bad[len(bad)-20] ^= 1
	if r.bc.claim(bad, addrOf(r.viewer), r.bc) {
		t.Error("a tampered SRTCP packet was taken from pion")
	}
	if !r.bc.claim(sealed, addrOf(r.viewer), r.bc) {
		t.Error("the viewer's SRTCP was left to pion")
	}
	select {
	case got := <-r.rtcpIn:
		if !bytes.Equal(got, pli) {
			t.Fatalf("OnRTCP got %x, want %x", got, pli)
		}
	case <-time.After(time.Second):
		t.Fatal("the viewer's SRTCP did not reach OnRTCP")
	}
	select {
	case got := <-r.rtcpIn:
		t.Fatalf("a second packet %x reached OnRTCP: the tampered one was taken", got)
	default:
	}

	// What pion writes while it closes goes nowhere.
	closing := closerFunc(func() error {
		_, err := r.bc.WriteToAddrPort([]byte("pion's close_notify"), addrOf(r.viewer))
		return err
	})
	if err := r.d.ClosePeer(closing); err != nil {
		t.Fatal(err)
	}
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1, SequenceNumber: 1}
	if _, err := r.d.WriteRTP(&h, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := r.d.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{SSRC: 1}}); err != nil {
		t.Fatal(err)
	}
	r.bc.Flush()
	buf := make([]byte, 1500)
	for i, want := range []string{"RTP", "RTCP"} {
		_ = r.viewer.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := r.viewer.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v, want the direct path's %s", i, err, want)
		}
		if bytes.Equal(buf[:n], []byte("pion's close_notify")) {
			t.Fatal("pion's write to a detached viewer went out")
		}
	}

	// Once pion is closed, its writes to the address (a new session of a
	// client that reused it) go out again; so do the new session's
	// packets that are not the detached viewer's: its ICE checks and
	// its ClientHello.
	if _, err := r.bc.WriteToAddrPort([]byte("a new session"), addrOf(r.viewer)); err != nil {
		t.Fatal(err)
	}
	r.bc.Flush()
	if got := readFrom(t, r.viewer, time.Second); string(got) != "a new session" {
		t.Errorf("after ClosePeer the viewer got %q, want pion's write", got)
	}
	if r.bc.claim(check(t, "othersession", rigPwd, false).Raw, addrOf(r.viewer), r.bc) {
		t.Error("a check for another session from the detached viewer's address was taken from pion")
	}
	hello := []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0}
	if r.bc.claim(hello, addrOf(r.viewer), r.bc) {
		t.Error("a ClientHello from the detached viewer's address was taken from pion")
	}

	r.d.Release(false)
	if r.bc.claim(sealed, addrOf(r.viewer), r.bc) {
		t.Error("after Release the viewer's packets are still taken from pion")
	}
	if r.bc.claim(check(t, rigUfrag, rigPwd, false).Raw, addrOf(loopbackUDP(t)), r.bc) {
		t.Error("after Release a check with its ufrag is still taken from pion")
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

// TestDetachedDTLSClose: the close_notify Release sends closes pion's DTLS
// client; the close_notify the client answers with ends the detached
// connection (ErrPeerClosed); silence for ConsentTimeout ends another.
func TestDetachedDTLSClose(t *testing.T) {
	r := newDetachRig(t)
	x := r.d.det.Load()
	x.mu.Lock()
	alert, err := r.d.closeNotify(x)
	x.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	// Sent from the DTLS server's socket, as the shared socket would.
	for len(r.tapped) > 0 {
		<-r.tapped
	}
	if _, err := r.serverSock.WriteTo(alert, r.client.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = r.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.client.Read(make([]byte, 100)); !errors.Is(err, io.EOF) {
		t.Fatalf("the client's read after sluice's close_notify: %v, want io.EOF", err)
	}
	// The client's own close_notify (pion sends one when it closes).
	_ = r.client.Close()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case b := <-r.tapped:
			r.bc.claim(b, addrOf(r.viewer), r.bc)
		case err := <-r.closed:
			if !errors.Is(err, ErrPeerClosed) {
				t.Fatalf("OnClose(%v), want ErrPeerClosed", err)
			}
			goto consent
		case <-deadline:
			t.Fatal("the client's close_notify did not end the detached connection")
		}
	}
consent:
	r2 := newDetachRig(t)
	r2.e.expireConsent(time.Now().Add(ConsentTimeout / 2))
	select {
	case err := <-r2.closed:
		t.Fatalf("OnClose(%v) before the consent timeout", err)
	case <-time.After(100 * time.Millisecond):
	}
	r2.e.expireConsent(time.Now().Add(ConsentTimeout + time.Second))
	select {
	case err := <-r2.closed:
		if !errors.Is(err, ErrConsentExpired) {
			t.Fatalf("OnClose(%v), want ErrConsentExpired", err)
		}
	case <-time.After(time.Second):
		t.Fatal("consent did not expire")
	}
}

// TestDetachedReplaysFlight: a viewer that repeats its handshake flight
// (it missed sluice's last one) gets pion's last flight again, at most
// maxReplays times; other records from it get nothing.
func TestDetachedReplaysFlight(t *testing.T) {
	r := newDetachRig(t)
	// The start of a repeated client flight: a handshake record, epoch 0.
	repeat := []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 7, 0, 2, 11, 0}
	for i := range maxReplays {
		r.bc.claim(repeat, addrOf(r.viewer), r.bc)
		if got := readFrom(t, r.viewer, time.Second); !bytes.Equal(got, rigFlight) {
			t.Fatalf("repeat %d: the viewer got %x, want the flight again", i+1, got)
		}
	}
	r.bc.claim(repeat, addrOf(r.viewer), r.bc)
	if got := readFrom(t, r.viewer, 200*time.Millisecond); got != nil {
		t.Errorf("repeat %d: the viewer got %x, want nothing more", maxReplays+1, got)
	}
}
