package whip

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/rtc"
)

// Detaching a publisher. Once connected, a publisher's every packet
// crosses pion's goroutines (socket reader, ICE, DTLS/SRTP mux, SRTP
// session, track, interceptors) before sluice sees it, and its
// PeerConnection holds about 150 KB. As for viewers (whep/detach.go),
// sluice then takes over (rtc.Direct.Detach): the shared socket's read
// goroutine decrypts the publisher's SRTP with its keys and pushes each
// packet into its ingest.Track (WriteRTP), RTX repairs unwrapped (RFC
// 4588 §4); sluice answers its ICE consent checks and sends it what
// pion's interceptors did: receiver reports (RFC 3550 §6.4.2) about once
// a second, and transport-wide congestion-control feedback
// (draft-holmer-rmcat-transport-wide-cc-extensions-01) every 100 ms,
// which a browser's bandwidth estimator needs to keep its bit rate. NACKs
// and keyframe requests come from the ingest tracks as before.
// Publishers on ICE-TCP, with simulcast, or with a DTLS cipher suite the
// direct path cannot read stay with pion.

// detachDelay is how long after its last track started a publisher is
// detached: a moment for pion to finish what it starts on connecting.
const detachDelay = 100 * time.Millisecond

// Feedback intervals of a detached publisher: TWCC as pion's sender
// interceptor, receiver reports as pion's report interceptor.
const (
	twccInterval   = 100 * time.Millisecond
	reportInterval = time.Second
)

// directTrack is one received track of a detached publisher.
type directTrack struct {
	ssrc, rtxSSRC uint32
	pt            uint8
	in            *ingest.Track
	stats         recvStats
	// pion is the track as pion's reader reads it (handover.go);
	// firstHeld the first packet sluice read of ssrc (1<<16 | sequence
	// number; 0: none yet).
	pion      *pionTrack
	firstHeld uint32
}

// detachState is the session's share of detaching, guarded by its mutex
// where not atomic.
type detachState struct {
	direct    *rtc.Direct // nil: the session stays with pion
	want      int         // tracks negotiated; detached once all started
	started   []directTrack
	connected bool
	timer     *time.Timer
	remoteICE [2]string
	twccID    uint8

	// Owned by the socket's read goroutine (OnRTP, OnRTCP) and the
	// feedback loop, under fbMu.
	fbMu   sync.Mutex
	tracks []directTrack
	twcc   *twcc.Recorder
	epoch  time.Time // TWCC arrival times count from here
	clock  func() time.Time
	pkt    rtp.Packet
	push   bool // pion's readers have returned: packets go to the tracks
	held   []heldPacket

	// handedOver is closed once pion's readers caught up with what
	// sluice holds (handover.go), while handingOver is set.
	handedOver  chan struct{}
	handingOver atomic.Bool
}

// heldPacket is a packet read while pion's readers were still ending.
type heldPacket struct {
	h       rtp.Header
	payload []byte
	at      time.Time
}

// maxHeld bounds the packets held while pion's readers end (about a
// second of a 4 Mbit/s publisher).
const maxHeld = 512

// trackStarted notes a started track for detaching and detaches once
// every negotiated track started on a connected session. s.mu is held.
func (s *Session) trackStarted(t *webrtc.TrackRemote, p *pionTrack, in *ingest.Track) {
	x := &s.det
	if x.direct == nil {
		return
	}
	if t.RID() != "" {
		x.direct = nil // simulcast stays with pion
		return
	}
	x.started = append(x.started, directTrack{
		ssrc: uint32(t.SSRC()), rtxSSRC: uint32(t.RtxSSRC()), pt: uint8(t.PayloadType()), in: in,
		stats: recvStats{clock: float64(t.Codec().ClockRate)}, pion: p,
	})
	s.scheduleDetach()
}

// onConnected arms detaching once the publisher is connected.
func (s *Session) onConnected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.det.connected = true
	s.scheduleDetach()
}

// scheduleDetach arms the detach timer when all is there. s.mu is held.
func (s *Session) scheduleDetach() {
	x := &s.det
	if s.closed || x.direct == nil || !x.connected || len(x.started) < x.want || x.timer != nil {
		return
	}
	x.timer = time.AfterFunc(detachDelay, s.detach)
}

// detach moves the publisher below pion (see above).
func (s *Session) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	x := &s.det
	if s.closed || x.direct == nil || s.detached.Load() {
		return
	}
	pc := s.pc
	fail := func(err error) {
		x.direct = nil
		s.log.Info("publisher stays with pion", "reason", err)
	}
	if err := x.direct.Start(pc); err != nil {
		fail(err)
		return
	}
	// The tracks' NACKs and keyframe requests went out through pion from
	// the same sender SSRC as sluice's feedback now will.
	x.direct.ContinueRTCP(s.rtcpSSRC, s.pionRTCP.Load())
	lu, lp := rtc.LocalCredentials(pc)
	ru, rp := rtc.RemoteCredentials(pc)
	x.fbMu.Lock()
	x.tracks = x.started
	x.twcc = twcc.NewRecorder(s.rtcpSSRC)
	x.clock = time.Now
	x.epoch = x.clock()
	x.handedOver = make(chan struct{})
	x.handingOver.Store(true)
	x.fbMu.Unlock()
	err := x.direct.Detach(rtc.DetachConfig{
		LocalUfrag: lu, LocalPwd: lp,
		OnRTP:   s.rtpDetached,
		OnRTCP:  s.rtcpDetached,
		OnMove:  func(a netip.AddrPort) { s.log.Debug("publisher moved", "addr", a) },
		OnClose: s.Close,
	})
	if err != nil {
		fail(err)
		return
	}
	x.remoteICE = [2]string{ru, rp}
	s.detached.Store(true)
	s.log.Info("publisher detached from pion")
	// Feedback from sluice at once, the publisher's packets coming to
	// sluice from now on: its TWCC feedback has no pause while pion's
	// readers catch up and its PeerConnection closes.
	s.bg.Go(s.feedbackLoop)
	s.bg.Go(func() {
		began := time.Now()
		s.awaitHandover()
		_ = x.direct.ClosePeer(pc) // Watch's callback ignores it: see pcDown
		// pion's track readers end with the connection; until then the
		// tracks are theirs, and what sluice reads meanwhile is held.
		s.readers.Wait()
		s.mu.Lock()
		s.pc = nil // for its memory to be freed
		s.mu.Unlock()
		x.fbMu.Lock()
		x.push = true
		held := len(x.held)
		for i := range x.held {
			p := &x.held[i]
			s.deliver(&p.h, p.payload, p.at)
		}
		x.held = nil
		x.fbMu.Unlock()
		s.log.Debug("publisher handed over from pion", "held", held, "took", time.Since(began))
	})
}

// rtpDetached takes one decrypted packet of a detached publisher, in the
// shared socket's read goroutine.
func (s *Session) rtpDetached(h *rtp.Header, payload []byte) {
	x := &s.det
	x.fbMu.Lock()
	defer x.fbMu.Unlock()
	now := x.clock()
	if x.twccID != 0 {
		if ext := h.GetExtension(x.twccID); len(ext) >= 2 {
			x.twcc.Record(h.SSRC, binary.BigEndian.Uint16(ext), now.Sub(x.epoch).Microseconds())
		}
	}
	if !x.push {
		for i := range x.tracks {
			if t := &x.tracks[i]; t.ssrc == h.SSRC && t.firstHeld == 0 {
				t.firstHeld = 1<<16 | uint32(h.SequenceNumber)
				s.checkHandoverLocked()
			}
		}
		if len(x.held) < maxHeld {
			h := *h
			h.Extensions = nil // not needed downstream, and reused by the caller
			x.held = append(x.held, heldPacket{h: h, payload: append([]byte(nil), payload...), at: now})
		}
		return
	}
	s.deliver(h, payload, now)
}

// deliver hands one packet to its track, RTX unwrapped. fbMu is held.
func (s *Session) deliver(h *rtp.Header, payload []byte, now time.Time) {
	x := &s.det
	for i := range x.tracks {
		t := &x.tracks[i]
		switch h.SSRC {
		case t.ssrc:
			t.stats.packet(h.SequenceNumber, h.Timestamp, now, false)
		case t.rtxSSRC:
			// RFC 4588 §4: the original sequence number, then the
			// original payload. Without one it is a padding probe.
			if t.rtxSSRC == 0 || len(payload) < 2 {
				return
			}
			h.SSRC, h.PayloadType = t.ssrc, t.pt
			h.SequenceNumber = binary.BigEndian.Uint16(payload)
			payload = payload[2:]

			t.stats.packet(h.SequenceNumber, h.Timestamp, now, true)
		default:
			continue
		}
		x.pkt.Header = *h
		x.pkt.Payload = payload
		t.in.WriteRTPAt(&x.pkt, now)
		x.pkt.Payload = nil
		return
	}
}

// rtcpDetached handles a detached publisher's decrypted RTCP: sender
// reports go to their tracks (A/V sync) and into the receiver reports.
func (s *Session) rtcpDetached(plain []byte) {
	pkts, err := rtcp.Unmarshal(plain)
	if err != nil {
		return
	}
	now := time.Now()
	x := &s.det
	for _, p := range pkts {
		sr, ok := p.(*rtcp.SenderReport)
		if !ok {
			continue
		}
		x.fbMu.Lock()
		for i := range x.tracks {
			if t := &x.tracks[i]; t.ssrc == sr.SSRC {
				t.stats.senderReport(sr.NTPTime, now)
				t.in.SenderReport(sr)
			}
		}
		x.fbMu.Unlock()
	}
}

// feedbackLoop sends a detached publisher its TWCC feedback and receiver
// reports (once its packets reach the tracks) until the session closes.
func (s *Session) feedbackLoop() {
	t := time.NewTicker(twccInterval)
	defer t.Stop()
	lastReport := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			var pkts []rtcp.Packet
			x := &s.det
			x.fbMu.Lock()
			if x.twccID != 0 {
				pkts = x.twcc.BuildFeedbackPacket()
			}
			if now.Sub(lastReport) >= reportInterval-twccInterval/2 {
				lastReport = now
				if rr := s.receiverReport(now); rr != nil {
					pkts = append(pkts, rr)
				}
			}
			x.fbMu.Unlock()
			if len(pkts) > 0 {
				_ = s.writeRTCP(pkts)
			}
		}
	}
}

// receiverReport is the report of every track's SSRC at now, or nil
// before the first packet. fbMu is held.
func (s *Session) receiverReport(now time.Time) *rtcp.ReceiverReport {
	rr := &rtcp.ReceiverReport{SSRC: s.rtcpSSRC}
	for i := range s.det.tracks {
		t := &s.det.tracks[i]
		if b, ok := t.stats.report(t.ssrc, now); ok && len(rr.Reports) < 31 {
			rr.Reports = append(rr.Reports, b)
		}
	}
	if len(rr.Reports) == 0 {
		return nil
	}
	return rr
}

// extmapID is the id of the header extension uri in an SDP, 0 if none.
func extmapID(d *sdp.SessionDescription, uri string) uint8 {
	for _, m := range d.MediaDescriptions {
		for _, a := range m.Attributes {
			if a.Key != "extmap" {
				continue
			}
			var e sdp.ExtMap
			if e.Unmarshal("extmap:"+a.Value) == nil && e.URI != nil && e.URI.String() == uri && e.Value > 0 && e.Value < 256 {
				return uint8(e.Value)
			}
		}
	}
	return 0
}

// pcDown ends the session when its PeerConnection failed or closed,
// unless the session closed it on detaching.
func (s *Session) pcDown(reason error) {
	if s.detached.Load() {
		return
	}
	s.Close(reason)
}

// Detached reports whether the publisher is detached from pion.
func (s *Session) Detached() bool { return s.detached.Load() }

// RTPPath is where the publisher's packets are read: "direct" when
// detached from pion, else "pion".
func (s *Session) RTPPath() string {
	if s.detached.Load() {
		return "direct"
	}
	return "pion"
}

// ConnectionState is the PeerConnection's state, or connected for a
// detached publisher whose session is open.
func (s *Session) ConnectionState() webrtc.PeerConnectionState {
	if s.detached.Load() {
		select {
		case <-s.done:
			return webrtc.PeerConnectionStateClosed
		default:
			return webrtc.PeerConnectionStateConnected
		}
	}
	if pc := s.PeerConnection(); pc != nil {
		return pc.ConnectionState()
	}
	return webrtc.PeerConnectionStateClosed
}

// IsICERestart reports whether a PATCH fragment restarts the ICE of a
// detached publisher (carries other credentials than its current ones).
func (s *Session) IsICERestart(f rtc.Fragment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.det.remoteICE
	return f.Ufrag != "" && (f.Ufrag != r[0] || f.Pwd != r[1])
}

// RestartICE answers an ICE restart of a detached publisher: the answer
// fragment has new credentials and the shared sockets' candidates.
func (s *Session) RestartICE(f rtc.Fragment) (string, error) {
	answer, err := s.det.direct.RestartICE(s.answer)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.det.remoteICE = [2]string{f.Ufrag, f.Pwd}
	s.mu.Unlock()
	return answer, nil
}
