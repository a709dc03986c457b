package whep

import (
	"net/netip"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/rtc"
)

// detachDelay is how long after connecting a viewer is detached from
// pion: a moment for pion to finish what it starts on connecting (its
// RTP senders) before it is closed. A viewer that missed sluice's last
// DTLS handshake flight still gets it afterwards (rtc.Direct.Detach).
const detachDelay = 100 * time.Millisecond

// detach closes the viewer's PeerConnection and leaves its ICE consent,
// RTCP and DTLS close to the direct path (rtc.Direct.Detach): the
// session then holds about 30 KB and no goroutine, where pion's
// connection alone held about 150 KB and 13 goroutines. It runs
// detachDelay after the viewer connected; a viewer with a data channel,
// ICE over TCP or a cipher suite the direct path cannot read stays with
// pion.
func (s *Session) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || !s.canDetach || s.detached.Load() || !s.onDirect.Load() {
		return
	}
	pc := s.peer()
	s.rtcpTracks = s.trackList()
	lu, lp := rtc.LocalCredentials(pc)
	ru, rp := rtc.RemoteCredentials(pc)
	err := s.direct.Detach(rtc.DetachConfig{
		LocalUfrag: lu, LocalPwd: lp,
		OnRTCP:  s.rtcpDetached,
		OnMove:  func(a netip.AddrPort) { s.log.Debug("viewer moved", "addr", a) },
		OnClose: s.Close,
	})
	if err != nil {
		s.canDetach = false
		s.log.Info("viewer stays with pion", "reason", err)
		return
	}
	s.remoteICE = [2]string{ru, rp}
	s.detached.Store(true)
	s.log.Debug("viewer detached from pion")
	s.wg.Go(func() {
		_ = s.direct.ClosePeer(pc) // pcDown ignores it
		// Let go of pion's connection: nothing may point into it for its
		// memory to be freed.
		s.pcRef.Store(nil)
		for _, t := range s.trackList() {
			t.unbindPion()
		}
	})
}

// rtcpDetached handles RTCP that the direct path decrypted.
func (s *Session) rtcpDetached(plain []byte) {
	s.rtcpIn(plain, s.rtcpTracks...)
}

// trackList is the session's tracks, each once.
func (s *Session) trackList() []*outTrack {
	var out []*outTrack
	for i, t := range s.tracks {
		if t != nil && i == t.index {
			out = append(out, t)
		}
	}
	return out
}

// pcDown ends the session when its PeerConnection failed or closed,
// unless the session closed it on detaching.
func (s *Session) pcDown(reason error) {
	if s.detached.Load() {
		return
	}
	s.Close(reason)
}

// Detached reports whether the viewer is detached from pion.
func (s *Session) Detached() bool { return s.detached.Load() }

// ConnectionState is the PeerConnection's state, or connected for a
// detached viewer whose session is open.
func (s *Session) ConnectionState() webrtc.PeerConnectionState {
	if s.detached.Load() {
		select {
		case <-s.done:
			return webrtc.PeerConnectionStateClosed
		default:
			return webrtc.PeerConnectionStateConnected
		}
	}
	if pc := s.peer(); pc != nil {
		return pc.ConnectionState()
	}
	return webrtc.PeerConnectionStateClosed
}

// IsICERestart reports whether a PATCH fragment restarts the ICE of a
// detached viewer (carries other credentials than its current ones).
func (s *Session) IsICERestart(f rtc.Fragment) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return f.Ufrag != "" && (f.Ufrag != s.remoteICE[0] || f.Pwd != s.remoteICE[1])
}

// RestartICE answers an ICE restart of a detached viewer: the answer
// fragment has new credentials and the shared sockets' candidates.
// Trickled candidates are not needed: the viewer's checks show its
// address.
func (s *Session) RestartICE(f rtc.Fragment) (string, error) {
	answer, err := s.direct.RestartICE(s.answer)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.remoteICE = [2]string{f.Ufrag, f.Pwd}
	s.mu.Unlock()
	return answer, nil
}
