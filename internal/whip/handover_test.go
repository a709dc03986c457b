package whip

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestHandoverWaitsForPion: pion's PeerConnection may close only once
// every track's pion reader delivered the packet just before the first
// one sluice read of its SSRC (across a sequence number wrap; a newer one
// reordered ahead counts too), and sluice's packets meanwhile are held.
func TestHandoverWaitsForPion(t *testing.T) {
	s := &Session{}
	x := &s.det
	x.clock = time.Now
	audio, video := &pionTrack{s: s}, &pionTrack{s: s}
	x.tracks = []directTrack{{ssrc: 1, pion: audio}, {ssrc: 2, pion: video}}
	x.handedOver = make(chan struct{})
	x.handingOver.Store(true)
	handedOver := func() bool {
		select {
		case <-x.handedOver:
			return true
		default:
			return false
		}
	}
	pionRead := func(p *pionTrack, seq uint16) {
		p.last.Store(1<<16 | uint32(seq))
		s.checkHandover()
	}
	sluiceRead := func(ssrc uint32, seq uint16) {
		s.rtpDetached(&rtp.Header{Version: 2, SSRC: ssrc, SequenceNumber: seq}, []byte{1})
	}

	pionRead(audio, 65534)
	pionRead(video, 100)
	sluiceRead(1, 0) // pion still holds 65535
	sluiceRead(2, 103)
	if handedOver() {
		t.Fatal("handed over while pion still held packets")
	}
	pionRead(audio, 65535) // audio caught up, across the wrap
	if handedOver() {
		t.Fatal("handed over while pion still held video")
	}
	pionRead(video, 101)
	if handedOver() {
		t.Fatal("handed over while pion still held video 102")
	}
	pionRead(video, 103) // 102 lost or late, 103 reordered ahead of sluice's
	if !handedOver() {
		t.Fatal("not handed over once every pion reader caught up")
	}
	if len(x.held) != 2 {
		t.Errorf("%d packets held, want 2", len(x.held))
	}
	pionRead(video, 104) // pion's reader may go on until it ends: nothing closes twice
}

// TestHandoverNeedsSluicePackets: a track of which sluice read nothing
// yet holds the hand-over (pion may hold its packets); it is bounded by
// handoverTimeout instead.
func TestHandoverNeedsSluicePackets(t *testing.T) {
	s := &Session{}
	x := &s.det
	x.clock = time.Now
	p := &pionTrack{s: s}
	x.tracks = []directTrack{{ssrc: 1, pion: p}}
	x.handedOver = make(chan struct{})
	x.handingOver.Store(true)
	p.last.Store(1<<16 | 7)
	s.checkHandover()
	select {
	case <-x.handedOver:
		t.Fatal("handed over before sluice read a packet of the track")
	default:
	}
}
