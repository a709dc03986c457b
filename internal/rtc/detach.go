package rtc

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // RFC 8489 §14.5: MESSAGE-INTEGRITY is HMAC-SHA1
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/ciphersuite"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/alert"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/stun/v4"
)

// Detaching. Once a viewer on the direct path is connected, what pion
// still does for it is small: answer the viewer's ICE consent checks,
// decrypt its RTCP, notice a DTLS close. Yet a PeerConnection holds about
// 150 KB (five reading goroutines, each with its own buffer, packet
// queues between them, ICE, DTLS and SRTP session state) and a dozen
// goroutines for that. Detach moves those duties to sluice, keyed by the
// viewer's address on the shared socket, so that the session can close
// its PeerConnection; what detaching keeps instead is an SRTP context and
// a few hundred bytes:
//
//   - STUN binding requests with the connection's ICE credentials are
//     answered (RFC 8445 §7.3, RFC 7675 consent): sluice acts as an ICE
//     lite agent would. A nominated check from a new address (after an ICE
//     restart, RestartICE, or a NAT's new mapping) moves the media there.
//   - SRTCP is decrypted with the peer's keys (derived like the direct
//     path's own) and handed to the session.
//   - A DTLS alert from the peer (close_notify, or a fatal one) ends the
//     connection; Release sends the peer a close_notify. Both are records
//     of the AES-GCM cipher suites, derived from the same captured
//     handshake; other suites are not detached.
//   - A peer that did not get sluice's final handshake flight sends its
//     own again (RFC 6347 §4.2.4); it gets the flight pion sent, kept by
//     the shared socket. So a connection can be detached as soon as it is
//     connected.
//   - Nothing authenticated from the peer for ConsentTimeout ends it.
//
// sluice takes only what authenticates as the peer's (or repeats its
// handshake); anything else from the address (a new session of a client
// that reused it) still goes to pion. What pion writes to the peer while
// ClosePeer closes the PeerConnection (its close_notify) is dropped.

// ConsentTimeout is the default of Config.Consent: a detached connection
// that sent nothing authenticated (STUN check, SRTP, SRTCP) for this long
// is ended, as pion's disconnected and failed timeouts together end one
// on its path.
const ConsentTimeout = 15 * time.Second

// consentSweep is how often detached connections are checked for consent.
const consentSweep = time.Second

// alertSeq is the DTLS sequence number of the close_notify sluice sends:
// above any pion used in epoch 1 (its Finished and a few retransmissions),
// so that the peer's replay window takes it.
const alertSeq = 1 << 32

var (
	// ErrNoDetach means a connection stays with pion.
	ErrNoDetach = errors.New("cannot detach from pion")
	// ErrConsentExpired ends a detached connection whose peer went silent.
	ErrConsentExpired = errors.New("ICE consent expired: nothing authenticated from the peer")
	// ErrPeerClosed ends a detached connection whose peer sent a DTLS alert.
	ErrPeerClosed = errors.New("peer closed the DTLS association")
)

// DetachConfig is what a detached connection needs from its session.
type DetachConfig struct {
	// LocalUfrag and LocalPwd are the ICE credentials of the answer.
	LocalUfrag, LocalPwd string
	// OnRTCP gets each decrypted compound RTCP packet, in the socket's
	// read goroutine; plain is reused after it returns.
	OnRTCP func(plain []byte)
	// OnRTP, when set, gets each decrypted RTP packet the peer sends (a
	// publisher's), in the socket's read goroutine: its header and its
	// payload without padding; both are reused after it returns.
	OnRTP func(h *rtp.Header, payload []byte)
	// OnMove runs when the peer's media address changes.
	OnMove func(netip.AddrPort)
	// OnClose runs once, in its own goroutine, when the peer closed the
	// association or its consent expired.
	OnClose func(error)
}

// iceCreds are local ICE credentials and the STUN integrity HMAC keyed
// with the password (made once, not per check; used under the
// connection's mutex).
type iceCreds struct {
	ufrag, pwd string
	mac        hash.Hash
}

func newICECreds(ufrag, pwd string) iceCreds {
	return iceCreds{ufrag: ufrag, pwd: pwd, mac: hmac.New(sha1.New, []byte(pwd))}
}

// detached is the state of a detached connection.
type detached struct {
	cfg      DetachConfig
	lastSeen atomic.Int64 // unix nanoseconds of the last authenticated packet
	once     sync.Once

	mu    sync.Mutex    // the socket read goroutines, ICE restarts, Release
	srtcp *srtp.Context // the peer's keys: its SRTCP, and its SRTP for OnRTP
	hdr   rtcp.Header
	plain []byte
	rtp   rtp.Header
	local iceCreds
	next  iceCreds // offered by an ICE restart until the peer uses it
	dtls  *ciphersuite.GCM
	// flight is pion's last handshake datagram to the peer, sent again
	// (at most maxReplays times) when the peer repeats its own flight.
	flight  []byte
	replays int
	consent consentScratch
}

// maxReplays bounds how often a detached connection's final handshake
// flight is sent again: DTLS retransmits about six times before giving up.
const maxReplays = 8

// Detach hands the connection's ICE consent, RTCP and DTLS close to
// sluice (see above); the caller then closes the PeerConnection with
// ClosePeer. It needs a started, routed direct path and an AES-GCM DTLS
// cipher suite.
func (d *Direct) Detach(cfg DetachConfig) error {
	r := d.route.Load()
	if r == nil {
		return fmt.Errorf("%w: no direct route", ErrNoDetach)
	}
	if d.det.Load() != nil {
		return fmt.Errorf("%w: detached already", ErrNoDetach)
	}
	if s := d.keys.cipherSuite(); dtlsKeyLen(s) == 0 {
		return fmt.Errorf("%w: cipher suite %s has no AES-GCM records", ErrNoDetach, s)
	}
	srtcp, err := d.keys.context(true)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoDetach, err)
	}
	x := &detached{cfg: cfg, srtcp: srtcp, local: newICECreds(cfg.LocalUfrag, cfg.LocalPwd), flight: r.conn.lastDTLS(r.addr)}
	x.lastSeen.Store(time.Now().UnixNano())
	d.det.Store(x)
	r.conn.own(r.addr, d)
	for _, c := range d.engine.net.list() {
		c.ufrags.Store(x.local.ufrag, d) // checks from a new address
		c.byUfrag.Store(true)
	}
	d.engine.watchConsent(d)
	return nil
}

// ClosePeer closes the connection's pion PeerConnection once detached;
// what pion sends the peer while it closes (its DTLS close_notify) is
// dropped.
func (d *Direct) ClosePeer(pc interface{ Close() error }) error {
	r := d.route.Load()
	if r == nil {
		return pc.Close()
	}
	key := ownKey(r.addr)
	r.conn.muted.Store(key, struct{}{})
	defer r.conn.muted.Delete(key)
	return pc.Close()
}

// Detached reports whether the connection is detached from pion.
func (d *Direct) Detached() bool { return d.det.Load() != nil }

// Release ends a detached connection: its address and ICE credentials
// are forgotten and, with notify, the peer gets a DTLS close_notify.
func (d *Direct) Release(notify bool) {
	x := d.det.Swap(nil)
	if x == nil {
		return
	}
	d.engine.detached.Delete(d)
	r := d.route.Load()
	if r != nil {
		r.conn.addrs.CompareAndDelete(ownKey(r.addr), d)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range d.engine.net.list() {
		c.ufrags.CompareAndDelete(x.local.ufrag, d)
		c.ufrags.CompareAndDelete(x.next.ufrag, d)
	}
	if !notify || r == nil {
		return
	}
	if sealed, err := d.closeNotify(x); err == nil {
		_, _ = r.conn.UDPConn.WriteToUDPAddrPort(sealed, r.addr)
	}
}

// RestartICE answers an ICE restart of a detached connection (RFC 9725
// §4.4.2): new local credentials, accepted beside the current ones until
// the peer's first check with them. The answer fragment lists the UDP
// candidates of the session's SDP answer (the shared sockets).
func (d *Direct) RestartICE(answer string) (string, error) {
	x := d.det.Load()
	if x == nil {
		return "", fmt.Errorf("%w: not detached", ErrNoDetach)
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return "", err
	}
	next := newICECreds(rand.Text()[:16], rand.Text())
	x.mu.Lock()
	for _, c := range d.engine.net.list() {
		c.ufrags.CompareAndDelete(x.next.ufrag, d)
		c.ufrags.Store(next.ufrag, d)
	}
	x.next = next
	x.mu.Unlock()
	udp := func(c string) bool {
		f := strings.Fields(c)
		return len(f) > 2 && strings.EqualFold(f[2], "udp")
	}
	return fragmentOf(&sd, next.ufrag, next.pwd, udp), nil
}

// WriteRTCP encrypts and queues RTCP packets (sender reports), as
// WriteRTP does RTP.
func (d *Direct) WriteRTCP(pkts []rtcp.Packet) error {
	r := d.route.Load()
	if r == nil {
		return ErrNoDirect
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil {
		return ErrNoDirect
	}
	raw, err := appendRTCP(d.rtcpRaw[:0], pkts)
	if err != nil {
		return err
	}
	d.rtcpRaw = raw[:0]
	sealed, err := d.ctx.EncryptRTCP(d.rtcpBuf[:0], raw, nil)
	if err != nil {
		return err
	}
	d.rtcpBuf = sealed[:0] // enqueue copies it
	_, err = r.conn.enqueue(sealed, r.addr)
	return err
}

// ContinueRTCP makes the SRTCP of sender SSRC ssrc go on after the sent
// packets pion already sent from it: the peer's SRTCP replay protection
// (RFC 3711 §3.3.2) drops an index it has seen, so a new context that
// started again at 0 would be silenced. A margin covers a write pion
// had in flight.
func (d *Direct) ContinueRTCP(ssrc, sent uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx != nil {
		d.ctx.SetIndex(ssrc, sent+64)
	}
}

// receive handles a packet from a detached peer's address (or a STUN
// check naming its ufrag), in the socket's read goroutine (RFC 7983
// demultiplexing). It reports whether the packet was the peer's; what
// does not authenticate as the peer's is left to pion.
func (d *Direct) receive(p []byte, from netip.AddrPort, c *batchConn) bool {
	x := d.det.Load()
	if x == nil || len(p) == 0 {
		return false
	}
	switch b := p[0]; {
	case b < 4:
		return d.receiveSTUN(x, p, from, c)
	case b >= 20 && b < 64:
		return d.receiveDTLS(x, p, from, c)
	case b >= 128 && b < 192 && len(p) >= 8 && p[1] >= 192 && p[1] <= 223:
		x.mu.Lock()
		defer x.mu.Unlock()
		plain, err := x.srtcp.DecryptRTCP(x.plain[:0], p, &x.hdr)
		if err != nil {
			return false
		}
		x.plain = plain[:0]
		x.lastSeen.Store(time.Now().UnixNano())
		x.cfg.OnRTCP(plain)
		return true
	case b >= 128 && b < 192 && x.cfg.OnRTP != nil:
		return d.receiveRTP(x, p)
	}
	return false
}

// receiveRTP decrypts a detached publisher's SRTP packet and hands it to
// OnRTP. What does not authenticate is dropped (pion would drop it too).
func (d *Direct) receiveRTP(x *detached, p []byte) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	plain, err := x.srtcp.DecryptRTP(x.plain[:0], p, &x.rtp)
	if err != nil {
		return false
	}
	x.plain = plain[:0]
	x.lastSeen.Store(time.Now().UnixNano())
	hl, err := x.rtp.Unmarshal(plain)
	if err != nil {
		return true
	}
	end := len(plain)
	if x.rtp.Padding && end > hl {
		end -= int(plain[end-1])
	}
	x.cfg.OnRTP(&x.rtp, plain[hl:max(end, hl)])
	return true
}

// receiveSTUN answers a binding request made with the connection's ICE
// credentials and follows a nominated check from a new address.
func (d *Direct) receiveSTUN(x *detached, p []byte, from netip.AddrPort, c *batchConn) bool {
	ok, nominated := d.answerSTUN(x, p, from, c)
	if !ok || !nominated {
		return ok
	}
	if r := d.route.Load(); r != nil && r.conn == c && ownKey(r.addr) == ownKey(from) {
		return true
	}
	// A nominated pair at a new address: the media goes there.
	nr, err := c.route(from)
	if err != nil {
		return true
	}
	old := d.route.Swap(nr)
	if old != nil {
		old.conn.addrs.CompareAndDelete(ownKey(old.addr), d)
	}
	c.own(from, d)
	if x.cfg.OnMove != nil {
		x.cfg.OnMove(from)
	}
	return true
}

// answerSTUN answers a binding request made with the connection's ICE
// credentials, in x's reused buffers. ok reports that p was one;
// nominated, that it carried USE-CANDIDATE.
func (d *Direct) answerSTUN(x *detached, p []byte, from netip.AddrPort, c *batchConn) (ok, nominated bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	s := &x.consent
	m := &s.req
	m.Raw = p // decoded in place: nothing writes into it
	if m.Decode() != nil || m.Type != stun.BindingRequest {
		return false, false // keepalive indications carry no integrity: they prove nothing
	}
	user, err := m.Get(stun.AttrUsername)
	if err != nil {
		return false, false
	}
	ufrag := ufragOf(user)
	creds, fresh := x.local, false
	if x.next.ufrag != "" && string(ufrag) == x.next.ufrag {
		creds, fresh = x.next, true
	}
	if string(ufrag) != creds.ufrag || !s.checkIntegrity(m, creds.mac) {
		return false, false
	}
	if fresh { // the peer restarted: its old credentials are done
		for _, conn := range d.engine.net.list() {
			conn.ufrags.CompareAndDelete(x.local.ufrag, d)
		}
		// The new ufrag stays registered (RestartICE): a later check
		// may come from yet another address.
		x.local, x.next = x.next, iceCreds{}
	}
	x.lastSeen.Store(time.Now().UnixNano())
	resp := s.answer(m.TransactionID, from, creds.mac)
	if resp == nil {
		return true, false
	}
	_, _ = c.UDPConn.WriteToUDPAddrPort(resp, from)
	return true, m.Contains(stun.AttrUseCandidate)
}

// receiveDTLS ends the connection on an authentic alert from the peer
// (a close_notify, or a fatal one), and answers a repeated handshake
// flight with sluice's last one. A ClientHello is a new session's
// (a client that reused the address): pion's.
func (d *Direct) receiveDTLS(x *detached, p []byte, from netip.AddrPort, c *batchConn) bool {
	var h recordlayer.Header
	if h.Unmarshal(p) != nil || len(p) <= recordlayer.FixedHeaderSize {
		return false
	}
	if h.ContentType == protocol.ContentTypeHandshake && h.Epoch == 0 {
		if handshake.Type(p[recordlayer.FixedHeaderSize]) == handshake.TypeClientHello {
			return false
		}
		x.mu.Lock()
		flight := x.flight
		if x.replays >= maxReplays {
			flight = nil
		}
		x.replays++
		x.mu.Unlock()
		if len(flight) > 0 {
			_, _ = c.UDPConn.WriteToUDPAddrPort(flight, from)
		}
		return true
	}
	if h.ContentType != protocol.ContentTypeAlert || h.Epoch == 0 {
		return false
	}
	// The first record of the datagram (no connection IDs: pion offers none).
	end := recordlayer.FixedHeaderSize + int(binary.BigEndian.Uint16(p[recordlayer.FixedHeaderSize-2:]))
	if end > len(p) {
		return false
	}
	x.mu.Lock()
	gcm, err := d.dtlsCipher(x)
	var out []byte
	if err == nil {
		out, err = gcm.Decrypt(recordlayer.Header{}, append([]byte(nil), p[:end]...))
	}
	x.mu.Unlock()
	var a alert.Alert
	if err != nil || len(out) < recordlayer.FixedHeaderSize || a.Unmarshal(out[recordlayer.FixedHeaderSize:]) != nil {
		return false
	}
	if a.Description == alert.CloseNotify || a.Level == alert.Fatal {
		d.end(x, ErrPeerClosed)
	}
	return true
}

// closeNotify returns the sealed DTLS close_notify record. x.mu is held.
func (d *Direct) closeNotify(x *detached) ([]byte, error) {
	gcm, err := d.dtlsCipher(x)
	if err != nil {
		return nil, err
	}
	rec := &recordlayer.RecordLayer{
		Header: recordlayer.Header{
			ContentType: protocol.ContentTypeAlert, Version: protocol.Version1_2,
			Epoch: 1, SequenceNumber: alertSeq,
		},
		Content: &alert.Alert{Level: alert.Warning, Description: alert.CloseNotify},
	}
	raw, err := rec.Marshal()
	if err != nil {
		return nil, err
	}
	return gcm.Encrypt(rec, raw)
}

// dtlsCipher is the record cipher of the connection's DTLS epoch 1, made
// when first needed. x.mu is held.
func (d *Direct) dtlsCipher(x *detached) (*ciphersuite.GCM, error) {
	if x.dtls == nil {
		g, err := d.keys.recordCipher()
		if err != nil {
			return nil, err
		}
		x.dtls = g
	}
	return x.dtls, nil
}

// end runs the session's OnClose once.
func (d *Direct) end(x *detached, reason error) {
	x.once.Do(func() { go x.cfg.OnClose(reason) })
}

// watchConsent adds d to the connections whose consent the engine checks.
func (e *Engine) watchConsent(d *Direct) {
	e.detached.Store(d, struct{}{})
	e.consentOnce.Do(func() { e.consent.Go(e.checkConsent) })
}

// checkConsent ends detached connections whose peers went silent, until
// the engine closes.
func (e *Engine) checkConsent() {
	t := time.NewTicker(consentSweep)
	defer t.Stop()
	for {
		select {
		case <-e.done:
			return
		case now := <-t.C:
			e.expireConsent(now)
		}
	}
}

// expireConsent ends the detached connections that sent nothing
// authenticated for the consent timeout before now.
func (e *Engine) expireConsent(now time.Time) {
	e.detached.Range(func(k, _ any) bool {
		d := k.(*Direct)
		if x := d.det.Load(); x != nil && now.UnixNano()-x.lastSeen.Load() > int64(e.consentTimeout) {
			d.end(x, ErrConsentExpired)
		}
		return true
	})
}

// owners are the detached peers of one shared socket: what they send is
// read by sluice, not passed to pion's mux.
type owners struct {
	any     atomic.Bool // set by the first own: until then reads pay nothing
	byUfrag atomic.Bool // ufrags holds some
	addrs   sync.Map    // netip.AddrPort (unmapped) → *Direct
	ufrags  sync.Map    // local ICE ufrag → *Direct: checks from a new address
	muted   sync.Map    // netip.AddrPort (unmapped) → struct{}: pion closing (ClosePeer)
}

func ownKey(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func (o *owners) own(addr netip.AddrPort, d *Direct) {
	o.addrs.Store(ownKey(addr), d)
	o.any.Store(true)
}

// mutes reports whether pion's writes to addr are to be dropped.
func (o *owners) mutes(addr netip.AddrPort) bool {
	if !o.any.Load() {
		return false
	}
	_, ok := o.muted.Load(ownKey(addr))
	return ok
}

// claim handles p if it is a detached peer's: from its address, or an
// ICE check naming its ufrag from a new one. false leaves it to pion.
func (o *owners) claim(p []byte, from netip.AddrPort, c *batchConn) bool {
	if v, ok := o.addrs.Load(ownKey(from)); ok && v.(*Direct).receive(p, from, c) {
		return true
	}
	if !o.byUfrag.Load() || !stun.IsMessage(p) {
		return false
	}
	m := &stun.Message{Raw: append([]byte(nil), p...)}
	if m.Decode() != nil {
		return false
	}
	user, err := m.Get(stun.AttrUsername)
	if err != nil {
		return false
	}
	ufrag, _, _ := strings.Cut(string(user), ":")
	if v, ok := o.ufrags.Load(ufrag); ok {
		return v.(*Direct).receive(p, from, c)
	}
	return false
}

// recordCipher is the DTLS 1.2 record cipher of the captured handshake,
// sluice's side (RFC 5246 §6.3 key expansion; RFC 5288 AES-GCM).
func (k *keyCapture) recordCipher() (*ciphersuite.GCM, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := dtlsKeyLen(k.suite)
	if n == 0 || len(k.master) == 0 {
		return nil, fmt.Errorf("%w: cipher suite %s", ErrNoDetach, k.suite)
	}
	keys, err := prf.GenerateEncryptionKeys(k.master, k.clientRandom, k.serverRandom[:], 0, n, 4, prfHash(k.suite))
	if err != nil {
		return nil, err
	}
	return ciphersuite.NewGCM(keys.ServerWriteKey, keys.ServerWriteIV, keys.ClientWriteKey, keys.ClientWriteIV)
}

// dtlsKeyLen is the AES key length of an AES-GCM cipher suite, 0 for the
// others.
func dtlsKeyLen(s dtls.CipherSuiteID) int {
	switch s {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, dtls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:
		return 16
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return 32
	}
	return 0
}
