package rtc

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/selfsign"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// TestDirectKeysMatchDTLS runs real DTLS handshakes (pion's dtls, over
// loopback UDP) in which the server's hooks feed a keyCapture, and checks
// that the keys the capture derives are the handshake's own: its exporter
// gives the server's bytes, and what its SRTP context encrypts, the
// client's context (from the client's own connection state) decrypts.
func TestDirectKeysMatchDTLS(t *testing.T) {
	suites := []dtls.CipherSuiteID{
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	}
	profiles := []dtls.SRTPProtectionProfile{
		dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80,
	}
	for _, suite := range suites {
		for _, profile := range profiles {
			t.Run(fmt.Sprintf("%s/%d", suite, profile), func(t *testing.T) {
				var k keyCapture
				server, client := dtlsPair(t, &k, suite, profile)

				st, ok := server.ConnectionState()
				if !ok {
					t.Fatal("no server connection state")
				}
				want, err := st.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60)
				if err != nil {
					t.Fatal(err)
				}
				got, err := k.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("exported keying material differs from the handshake's:\n got %x\nwant %x", got, want)
				}

				enc, err := k.context(false)
				if err != nil {
					t.Fatal(err)
				}
				cst, _ := client.ConnectionState()
				cfg := srtp.Config{Profile: srtp.ProtectionProfile(profile)}
				if err := cfg.ExtractSessionKeysFromDTLS(&cst, true); err != nil {
					t.Fatal(err)
				}
				dec, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
				if err != nil {
					t.Fatal(err)
				}
				pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 65530, Timestamp: 1234, SSRC: 0xdecafbad},
					Payload: bytes.Repeat([]byte{0xab}, 1100)}
				// A second context with the same keys encrypts in place, as
				// Direct.WriteRTP does: the result must be the same bytes.
				inPlace, err := k.context(false)
				if err != nil {
					t.Fatal(err)
				}
				for range 10 { // across the sequence number wrap
					plain, _ := pkt.Marshal()
					sealed, err := enc.EncryptRTP(nil, plain, nil)
					if err != nil {
						t.Fatal(err)
					}
					buf := append(make([]byte, 0, len(plain)+srtpTagRoom), plain...)
					same, err := inPlace.EncryptRTP(buf[:0], buf, nil)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(same, sealed) || &same[0] != &buf[0] {
						t.Fatalf("seq %d: encrypting in place gave other bytes or another buffer", pkt.SequenceNumber)
					}
					opened, err := dec.DecryptRTP(nil, sealed, nil)
					if err != nil {
						t.Fatalf("seq %d: the client cannot decrypt: %v", pkt.SequenceNumber, err)
					}
					if !bytes.Equal(opened, plain) {
						t.Fatalf("seq %d: decrypted packet differs", pkt.SequenceNumber)
					}
					pkt.SequenceNumber++
				}
			})
		}
	}
}

// TestDirectNeedsHandshake: without a captured server handshake there are
// no keys, and the error says so (the viewer stays on pion's path).
func TestDirectNeedsHandshake(t *testing.T) {
	var k keyCapture
	if _, err := k.context(false); !errors.Is(err, ErrNoDirect) {
		t.Fatalf("context without a handshake: %v, want ErrNoDirect", err)
	}
	// A key log line of another kind is ignored, not an error.
	if n, err := k.Write([]byte("SERVER_HANDSHAKE_TRAFFIC_SECRET 00 11\n")); err != nil || n == 0 {
		t.Fatalf("Write: %d, %v", n, err)
	}
	if _, err := k.context(false); !errors.Is(err, ErrNoDirect) {
		t.Fatalf("context after an unrelated key log line: %v, want ErrNoDirect", err)
	}
}

// dtlsPair connects a pion DTLS client and server over loopback UDP; the
// server uses k's hooks as NewViewerPC sets them.
func dtlsPair(t *testing.T, k *keyCapture, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile) (server, client *dtls.Conn) {
	t.Helper()
	server, client, _ = dtlsPairTapped(t, k, suite, profile, nil)
	return server, client
}

// dtlsPairTapped is dtlsPair whose server hands tap a copy of every
// datagram it reads, and which also returns the server's socket.
func dtlsPairTapped(t *testing.T, k *keyCapture, suite dtls.CipherSuiteID, profile dtls.SRTPProtectionProfile, tap func([]byte)) (server, client *dtls.Conn, sock *net.UDPConn) {
	t.Helper()
	cert, err := selfsign.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	sc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	var serverConn net.PacketConn = sc
	if tap != nil {
		serverConn = tapConn{sc, tap}
	}
	server, err = dtls.Server(serverConn, cc.LocalAddr(), &dtls.Config{
		Certificates:           []tls.Certificate{cert},
		CipherSuites:           []dtls.CipherSuiteID{suite},
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{profile},
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		ServerHelloMessageHook: k.serverHello,
		KeyLogWriter:           k,
	})
	if err != nil {
		t.Fatal(err)
	}
	client, err = dtls.Client(cc, sc.LocalAddr(), &dtls.Config{
		Certificates:           []tls.Certificate{cert},
		CipherSuites:           []dtls.CipherSuiteID{suite},
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{profile},
		ExtendedMasterSecret:   dtls.RequireExtendedMasterSecret,
		InsecureSkipVerify:     true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = server.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- server.HandshakeContext(ctx) }()
	if err := client.HandshakeContext(ctx); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	return server, client, sc
}

type tapConn struct {
	net.PacketConn
	tap func([]byte)
}

func (c tapConn) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := c.PacketConn.ReadFrom(p)
	if n > 0 {
		c.tap(append([]byte(nil), p[:n]...))
	}
	return n, addr, err
}

// directRig is a Direct with the keys of a real handshake, writing through
// a batched loopback socket to peer, and the peer's decryption context.
type directRig struct {
	d    *Direct
	bc   *batchConn
	peer *net.UDPConn
	dec  *srtp.Context
}

func newDirectRig(t *testing.T) *directRig {
	t.Helper()
	var k keyCapture
	_, client := dtlsPair(t, &k, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.SRTP_AEAD_AES_128_GCM)
	ctx, err := k.context(false)
	if err != nil {
		t.Fatal(err)
	}
	cst, _ := client.ConnectionState()
	cfg := srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}
	if err := cfg.ExtractSessionKeysFromDTLS(&cst, true); err != nil {
		t.Fatal(err)
	}
	dec, err := srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile)
	if err != nil {
		t.Fatal(err)
	}
	key, salt, profile, err := k.masterKeys(false)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := newGCMSealer(profile, key, salt)
	if err != nil {
		t.Fatal(err)
	}
	r := &directRig{d: &Direct{ctx: ctx, gcm: gcm}, bc: loopbackBatchConn(t), peer: loopbackUDP(t), dec: dec}
	r.to(r.peer)
	return r
}

// to sends the direct path's packets to peer.
func (r *directRig) to(peer *net.UDPConn) {
	rt, err := r.bc.route(peer.LocalAddr().(*net.UDPAddr).AddrPort())
	if err != nil {
		panic(err) // a loopback socket's own address
	}
	r.d.route.Store(rt)
}

// read returns the next packet peer receives, decrypted.
func (r *directRig) read(t *testing.T, peer *net.UDPConn) rtp.Packet {
	t.Helper()
	buf := make([]byte, 1500)
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := peer.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := r.dec.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("the peer cannot decrypt the packet: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDirectWriteAllocatesNothing: once warm, encrypting and queueing a
// packet on the batched socket allocates nothing; and the packets that
// reach the peer decrypt with the peer's keys.
func TestDirectWriteAllocatesNothing(t *testing.T) {
	r := newDirectRig(t)
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1, Timestamp: 90000}
	payload := bytes.Repeat([]byte{1}, 1000)
	write := func() {
		h.SequenceNumber++
		if _, err := r.d.WriteRTP(&h, payload); err != nil {
			t.Fatal(err)
		}
		r.bc.Flush()
	}
	write()
	if n := testing.AllocsPerRun(200, write); n != 0 && !raceEnabled {
		t.Errorf("%.1f allocations per packet, want 0", n)
	}

	// To a fresh socket: the first one's buffer may have overflowed.
	peer2 := loopbackUDP(t)
	r.to(peer2)
	write()
	if got := r.read(t, peer2); got.SequenceNumber != h.SequenceNumber || !bytes.Equal(got.Payload, payload) {
		t.Fatalf("the peer got packet %d with %d payload bytes, want %d with %d", got.SequenceNumber, len(got.Payload), h.SequenceNumber, len(payload))
	}
}

// TestDirectTransportCC: with SetTransportCC, every packet of the
// connection, whatever its SSRC, carries the next transport-wide sequence
// number in the negotiated header extension, as pion's TWCC interceptor
// numbers them; without it, none.
func TestDirectTransportCC(t *testing.T) {
	r := newDirectRig(t)
	video := rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}
	audio := rtp.Header{Version: 2, PayloadType: 111, SSRC: 2}
	write := func(h *rtp.Header, payload byte) rtp.Header {
		t.Helper()
		if _, err := r.d.WriteRTP(h, []byte{payload}); err != nil {
			t.Fatal(err)
		}
		r.bc.Flush()
		return r.read(t, r.peer).Header
	}

	if h := write(&video, 0); h.Extension {
		t.Fatalf("without SetTransportCC: extensions %v", h.GetExtensionIDs())
	}
	const id = 5
	r.d.SetTransportCC(id)
	for i, h := range []*rtp.Header{&video, &audio, &video, &audio} {
		h.SequenceNumber++
		got := write(h, byte(i))
		var ext rtp.TransportCCExtension
		if err := ext.Unmarshal(got.GetExtension(id)); err != nil {
			t.Fatalf("packet %d (SSRC %d): no transport-wide sequence number: %v", i, got.SSRC, err)
		}
		if ext.TransportSequence != uint16(i) {
			t.Errorf("packet %d (SSRC %d): transport-wide sequence %d, want %d", i, got.SSRC, ext.TransportSequence, i)
		}
	}
}
