package whip

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// The hand-over from pion to the direct path loses nothing. Once
// rtc.Direct.Detach claims the publisher's address, the shared socket's
// read goroutine gives pion no more of its packets, but pion may still
// hold some that it read before: in its UDP mux, ICE, DTLS/SRTP mux and
// SRTP read-stream buffers. Closing the PeerConnection then would drop
// them (its receivers stop reading at once), and audio, which is not
// repaired by NACK, would miss a packet: a 20 ms gap for every viewer.
// So the PeerConnection is closed only once pion's readers have caught up:
// each track has delivered the packet just before the first one sluice
// read of its SSRC (in the socket's order, everything before that went to
// pion), or handoverTimeout passed. What sluice reads meanwhile is held
// and delivered after pion's readers return, in order.

// handoverTimeout bounds the wait for pion's readers to catch up (a
// track that sends nothing more, a packet pion dropped).
const handoverTimeout = 250 * time.Millisecond

// pionTrack is a track as pion's reader hands it to the ingest track: it
// notes the sequence number of the newest packet read.
type pionTrack struct {
	*webrtc.TrackRemote
	s    *Session
	last atomic.Uint32 // 1<<16 | newest sequence number; 0: none yet
}

// Read reads the next packet from pion and notes its sequence number.
func (p *pionTrack) Read(b []byte) (int, interceptor.Attributes, error) {
	n, a, err := p.TrackRemote.Read(b)
	if err != nil || n < 4 {
		return n, a, err
	}
	seq := binary.BigEndian.Uint16(b[2:4])
	if last := p.last.Load(); last == 0 || int16(seq-uint16(last)) > 0 {
		p.last.Store(1<<16 | uint32(seq))
	}
	if p.s.det.handingOver.Load() {
		p.s.checkHandover()
	}
	return n, a, err
}

// caughtUp reports whether pion's reader has delivered the packet before
// first (1<<16 | sequence number; 0: sluice read none yet).
func (p *pionTrack) caughtUp(first uint32) bool {
	last := p.last.Load()
	if first == 0 || last == 0 {
		return false
	}
	return int16(uint16(last)-(uint16(first)-1)) >= 0
}

// checkHandover closes handedOver once every track's pion reader caught
// up with what sluice holds.
func (s *Session) checkHandover() {
	x := &s.det
	x.fbMu.Lock()
	defer x.fbMu.Unlock()
	s.checkHandoverLocked()
}

// checkHandoverLocked is checkHandover with fbMu held.
func (s *Session) checkHandoverLocked() {
	x := &s.det
	if x.handedOver == nil || !x.handingOver.Load() {
		return
	}
	for i := range x.tracks {
		t := &x.tracks[i]
		if t.pion != nil && !t.pion.caughtUp(t.firstHeld) {
			return
		}
	}
	x.handingOver.Store(false)
	close(x.handedOver)
}

// awaitHandover waits until pion's readers caught up, handoverTimeout
// passed, or the session closed.
func (s *Session) awaitHandover() {
	t := time.NewTimer(handoverTimeout)
	defer t.Stop()
	select {
	case <-s.det.handedOver:
	case <-t.C:
	case <-s.stop:
	}
}
