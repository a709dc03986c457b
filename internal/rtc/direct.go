package rtc

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// Direct is a viewer's RTP path below pion: packets are encrypted with the
// connection's own SRTP keys and queued on the shared UDP socket for the
// selected candidate pair, in the caller's goroutine. Pion's path for the
// same packet (track writer, SRTP session and its lock, DTLS/SRTP mux,
// ICE connection, candidate pair and UDP mux lookups) costs about three
// times the encryption itself; RTCP, STUN and DTLS stay with pion.
//
// Pion does not hand out the keys. sluice derives them from what two
// hooks of pion's, meant for debugging and tests, show of the DTLS
// handshake: the Server Hello sluice sends (server random, cipher suite,
// SRTP profile) and the key log (client random, master secret). From them
// the RFC 5764 §4.2 exporter gives exactly the keys pion uses; sluice must be the DTLS
// server for this (SetAnsweringDTLSRole), so an offer with a=setup:passive
// gets no Direct. When anything else is missing (an unknown cipher suite,
// ICE over TCP), Start fails and the viewer stays on pion's path.
// Simulcast viewers get transport-wide sequence numbers from here too
// (SetTransportCC).
type Direct struct {
	engine *Engine
	keys   keyCapture

	mu      sync.Mutex // orders writes: the SRTP context is not safe for concurrent use
	ctx     *srtp.Context
	gcm     *gcmSealer // the RTP's encryption under AES-GCM profiles; else ctx's
	hdr     rtp.Header // scratch for EncryptRTP
	buf     []byte     // a packet, encrypted in place
	rtcpBuf []byte     // scratch of WriteRTCP: sealed
	rtcpRaw []byte     // and plain

	// Transport-wide sequence numbers (draft-holmer-rmcat-transport-wide-
	// cc-extensions-01), one counter for every packet of the connection,
	// in header extension twccID when the viewer negotiated it.
	twccID  uint8
	twccSeq uint16
	twccBuf [2]byte

	open  openGroup // the last datagram QueueRTP started in a Batch
	route atomic.Pointer[route]
	det   atomic.Pointer[detached] // set by Detach (detach.go)
}

type route struct {
	conn *batchConn
	dest // the peer
}

// srtpTagRoom is what SRTP adds after an RTP packet: the authentication
// tag, 16 bytes at most (AEAD profiles; 10 for HMAC-SHA1-80).
const srtpTagRoom = 16

// ErrNoDirect means a connection cannot use the direct path; pion's is used.
var ErrNoDirect = errors.New("no direct SRTP path")

// settings returns the settings of one viewer PeerConnection with the
// hooks through which the direct path learns its keys.
func (d *Direct) settings(s webrtc.SettingEngine) (webrtc.SettingEngine, error) {
	if err := s.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return s, err
	}
	// As the server, pion would first send a HelloVerifyRequest: a round
	// trip that proves the client's address. ICE's connectivity checks
	// proved it already, and DTLS flows only on the checked pair.
	s.SetDTLSInsecureSkipHelloVerify(true)
	// AES-128-GCM first (pion's own order puts AES-256 first): 10 AES
	// rounds instead of 14 per block, the cipher most of the per-packet
	// cost is in, and the profile browsers prefer.
	s.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AEAD_AES_256_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	s.SetDTLSServerHelloMessageHook(d.keys.serverHello)
	s.SetDTLSKeyLogWriter(&d.keys)
	return s, nil
}

// Start derives the SRTP keys of the connected PeerConnection and finds
// the socket and address its packets go to (unless UpdateRoute just
// did). After an error the caller keeps writing through pion.
func (d *Direct) Start(pc *webrtc.PeerConnection) error {
	ctx, err := d.keys.context(false)
	if err != nil {
		return err
	}
	var gcm *gcmSealer
	if key, salt, profile, err := d.keys.masterKeys(false); err == nil {
		gcm, _ = newGCMSealer(profile, key, salt) // nil for other profiles
	}
	if d.route.Load() == nil {
		if err := d.UpdateRoute(pc); err != nil {
			return err
		}
	}
	d.mu.Lock()
	d.ctx, d.gcm = ctx, gcm
	d.mu.Unlock()
	return nil
}

// UpdateRoute follows the selected candidate pair (it changes with an ICE
// restart). A pair the direct path cannot use (TCP) is an error, and
// Routed reports false until a usable pair is selected.
func (d *Direct) UpdateRoute(pc *webrtc.PeerConnection) error {
	r, err := d.engine.routeOf(pc)
	if err != nil {
		d.route.Store(nil)
		return err
	}
	d.route.Store(r)
	return nil
}

// SetTransportCC puts a transport-wide sequence number on every packet,
// in header extension id (0: none), as pion's TWCC header extension
// interceptor does on its path.
func (d *Direct) SetTransportCC(id uint8) {
	d.mu.Lock()
	d.twccID = id
	d.mu.Unlock()
}

// Addr is the peer address the direct path sends to, if it has a route.
func (d *Direct) Addr() (netip.AddrPort, bool) {
	if r := d.route.Load(); r != nil {
		return r.addr, true
	}
	return netip.AddrPort{}, false
}

// Routed reports whether the selected candidate pair is one the direct
// path can send on; while it is not, the writer should be pion's.
func (d *Direct) Routed() bool { return d.route.Load() != nil }

// WriteRTP encrypts and queues one packet, which leaves at the next flush
// or at the latest after the shared socket's short timer; it implements
// webrtc.TrackLocalWriter. It allocates nothing once its buffers have
// grown to the largest packet (and h carries the TWCC extension, when
// there is one, from its first packet on).
func (d *Direct) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return d.writeRTP(h, payload, nil)
}

// QueueRTP is WriteRTP into the caller's own Batch, where the packet
// waits for the caller's Batch.Flush. A writer of bursts (an egress
// worker's pass over its viewers) sends a pass with one system call,
// without locks or timers.
func (d *Direct) QueueRTP(h *rtp.Header, payload []byte, b *Batch) (int, error) {
	return d.writeRTP(h, payload, b)
}

// writeRTP encrypts a packet and queues it in b, or on the shared socket
// when b is nil.
func (d *Direct) writeRTP(h *rtp.Header, payload []byte, b *Batch) (int, error) {
	r := d.route.Load()
	if r == nil {
		return 0, ErrNoDirect
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil {
		return 0, ErrNoDirect
	}
	if d.twccID != 0 {
		binary.BigEndian.PutUint16(d.twccBuf[:], d.twccSeq)
		d.twccSeq++
		if err := h.SetExtension(d.twccID, d.twccBuf[:]); err != nil {
			return 0, err
		}
	}
	n := h.MarshalSize()
	// Room for the authentication tag (16 bytes at most) after the
	// packet: pion's SRTP encrypts in place when given the same buffer.
	size := n + len(payload) + srtpTagRoom
	var buf []byte
	switch {
	case b != nil && size <= packetBufSize:
		buf = b.buffer() // encrypted where it is sent from
	case cap(d.buf) < size:
		b = nil
		d.buf = make([]byte, 0, size+64)
		buf = d.buf
	default:
		b = nil
		buf = d.buf
	}
	plain := buf[:n+len(payload)]
	if _, err := h.MarshalTo(plain); err != nil {
		return 0, err
	}
	copy(plain[n:], payload)
	var sealed []byte
	if d.gcm != nil {
		sealed = d.gcm.seal(plain, n, h.SSRC, h.SequenceNumber)
	} else {
		var err error
		if sealed, err = d.ctx.EncryptRTP(plain[:0], plain, &d.hdr); err != nil {
			return 0, err
		}
	}
	if b != nil {
		b.add(r, sealed, &d.open)
		return len(sealed), nil
	}
	return r.conn.enqueue(sealed, r.addr)
}

// Write sends a marshalled RTP packet; it implements
// webrtc.TrackLocalWriter.
func (d *Direct) Write(b []byte) (int, error) {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return 0, err
	}
	return d.WriteRTP(&p.Header, p.Payload)
}

// routeOf finds the shared UDP socket and the peer address of a
// PeerConnection's selected candidate pair.
func (e *Engine) routeOf(pc *webrtc.PeerConnection) (*route, error) {
	pair := selectedPair(pc)
	if pair == nil {
		return nil, fmt.Errorf("%w: no selected candidate pair", ErrNoDirect)
	}
	if pair.Local.Protocol != webrtc.ICEProtocolUDP || pair.Local.Typ != webrtc.ICECandidateTypeHost {
		return nil, fmt.Errorf("%w: %s %s candidate", ErrNoDirect, pair.Local.Protocol, pair.Local.Typ)
	}
	local, ok1 := candidateAddr(pair.Local)
	remote, ok2 := candidateAddr(pair.Remote)
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("%w: candidate address", ErrNoDirect)
	}
	conn := e.net.conn(local)
	if conn == nil {
		return nil, fmt.Errorf("%w: no socket for %s", ErrNoDirect, local)
	}
	return conn.route(remote)
}

// conn returns the mux socket bound to addr.
func (n *batchNet) conn(addr netip.AddrPort) *batchConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, c := range n.conns {
		if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.AddrPort().Addr().Unmap() == addr.Addr() && a.AddrPort().Port() == addr.Port() {
			return c
		}
	}
	return nil
}

// keyCapture collects what the RFC 5705 exporter needs from one DTLS
// handshake in which sluice is the server.
type keyCapture struct {
	mu           sync.Mutex
	serverRandom [handshake.RandomLength]byte
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
	hello        bool
	clientRandom []byte
	master       []byte
}

// serverHello is the DTLS Server Hello hook: it notes and sends the
// message unchanged.
func (k *keyCapture) serverHello(m handshake.MessageServerHello) handshake.Message {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serverRandom = m.Random.MarshalFixed()
	k.hello = m.CipherSuiteID != nil
	if k.hello {
		k.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	k.profile = 0
	for _, ext := range m.Extensions {
		if u, ok := ext.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	return &m
}

// Write takes the key log line "CLIENT_RANDOM <hex> <hex>" (NSS key log
// format) that pion writes once the master secret is known.
func (k *keyCapture) Write(p []byte) (int, error) {
	f := strings.Fields(string(p))
	if len(f) != 3 || f[0] != "CLIENT_RANDOM" {
		return len(p), nil // another kind of line: not needed
	}
	random, err1 := hex.DecodeString(f[1])
	secret, err2 := hex.DecodeString(f[2])
	if err1 != nil || err2 != nil {
		return len(p), nil
	}
	k.mu.Lock()
	k.clientRandom, k.master = random, secret
	k.mu.Unlock()
	return len(p), nil
}

// prfHash is the TLS 1.2 PRF hash of the cipher suites pion offers with
// an ECDSA certificate, and those of RSA certificates for completeness.
func prfHash(s dtls.CipherSuiteID) prf.HashFunc {
	switch s {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, dtls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM, dtls.TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8:
		return sha256.New
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	}
	return nil
}

// ExportKeyingMaterial is the RFC 5705 exporter of the captured handshake
// (the seed is the client random, then the server random, as pion's).
func (k *keyCapture) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	h := prfHash(k.suite)
	if h == nil || len(context) != 0 {
		return nil, fmt.Errorf("%w: cipher suite %s", ErrNoDirect, k.suite)
	}
	seed := append(append([]byte(label), k.clientRandom...), k.serverRandom[:]...)
	return prf.PHash(k.master, seed, length, h)
}

// context returns the SRTP context of what sluice, the DTLS server,
// sends, or with remote of what the peer sends (detach.go).
func (k *keyCapture) context(remote bool) (*srtp.Context, error) {
	key, salt, profile, err := k.masterKeys(remote)
	if err != nil {
		return nil, err
	}
	if remote {
		// A peer that negotiated cryptex (RFC 9335, which pion offers
		// and accepts) encrypts its RTP header extensions: decrypting
		// needs the mode on; other packets decrypt as before.
		return srtp.CreateContext(key, salt, profile, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	return srtp.CreateContext(key, salt, profile)
}

// masterKeys returns the SRTP master key and salt of what sluice sends,
// or with remote of what the peer sends, and the profile.
func (k *keyCapture) masterKeys(remote bool) (key, salt []byte, profile srtp.ProtectionProfile, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.hello || k.profile == 0 || len(k.master) == 0 || len(k.clientRandom) != handshake.RandomLength {
		return nil, nil, 0, fmt.Errorf("%w: DTLS handshake not seen as server", ErrNoDirect)
	}
	cfg := srtp.Config{Profile: k.profile}
	if err := cfg.ExtractSessionKeysFromDTLS(k, false); err != nil {
		return nil, nil, 0, err
	}
	if remote {
		return cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, k.profile, nil
	}
	return cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, k.profile, nil
}

// cipherSuite is the captured handshake's cipher suite.
func (k *keyCapture) cipherSuite() dtls.CipherSuiteID {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.suite
}
