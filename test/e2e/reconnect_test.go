package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// seqWatch records, per kind, the largest jump between consecutive RTP
// sequence numbers a viewer received.
type seqWatch struct {
	mu      sync.Mutex
	last    map[webrtc.RTPCodecType]uint16
	maxJump map[webrtc.RTPCodecType]uint16
	count   map[webrtc.RTPCodecType]int
	lastTS  map[webrtc.RTPCodecType]uint32
	maxTS   map[webrtc.RTPCodecType]uint32 // largest timestamp step; backwards counts as the largest
}

func newSeqWatch() *seqWatch {
	return &seqWatch{last: map[webrtc.RTPCodecType]uint16{}, maxJump: map[webrtc.RTPCodecType]uint16{}, count: map[webrtc.RTPCodecType]int{},
		lastTS: map[webrtc.RTPCodecType]uint32{}, maxTS: map[webrtc.RTPCodecType]uint32{}}
}

func (w *seqWatch) onRTP(kind webrtc.RTPCodecType, p *rtp.Packet) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.count[kind] > 0 {
		if d := p.SequenceNumber - w.last[kind]; d > w.maxJump[kind] && d < 1<<15 {
			w.maxJump[kind] = d
		}
		d := p.Timestamp - w.lastTS[kind]
		if d >= 1<<31 {
			d = ^uint32(0) // backwards: the worst jump there is
		}
		w.maxTS[kind] = max(w.maxTS[kind], d)
	}
	w.last[kind] = p.SequenceNumber
	w.lastTS[kind] = p.Timestamp
	w.count[kind]++
}

func (w *seqWatch) snapshot() (count, maxJump map[webrtc.RTPCodecType]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	count, maxJump = map[webrtc.RTPCodecType]int{}, map[webrtc.RTPCodecType]int{}
	for k, v := range w.count {
		count[k], maxJump[k] = v, int(w.maxJump[k])
	}
	return count, maxJump
}

// TestPublisherReconnectKeepsViewers: publisher A streams to a viewer, A
// disappears (DELETE), B publishes the same stream within the grace period.
// The viewer's PeerConnection stays connected, its sequence numbers have no
// jump, and its frames resume at B's keyframe.
func TestPublisherReconnectKeepsViewers(t *testing.T) {
	base := startServer(t, func(c *config.Config) { c.Stream.ReconnectGrace = 10 * time.Second })
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()

	pubA, err := client.Publish(ctx, base+"/whip/re", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fa := newFeed(pubA, loadClip(t), 40)
	go fa.run(ctx)
	<-fa.sentAU(1)

	watch := newSeqWatch()
	v, err := client.View(ctx, base+"/whep/re", client.ViewOptions{OnRTP: watch.onRTP})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	<-fa.done
	_ = pubA.Close() // DELETE: the stream waits for a successor
	beforeCount, _ := watch.snapshot()

	// Drain what A's feed delivered, then B takes over after a pause.
	aus := 0
drain:
	for {
		select {
		case <-v.AccessUnits():
			aus++
		case <-time.After(500 * time.Millisecond):
			break drain
		}
	}
	if aus == 0 {
		t.Fatal("no access units from the first publisher")
	}
	select {
	case <-v.Done():
		t.Fatal("viewer closed when the publisher left, despite the grace period")
	default:
	}

	pubB, err := client.Publish(ctx, base+"/whip/re", client.PublishOptions{})
	if err != nil {
		t.Fatalf("second publisher within the grace period: %v", err)
	}
	defer pubB.Close()
	// B starts mid-clip (a P frame) so the viewer must wait for its keyframe.
	clip := loadClip(t)
	fb := newFeed(pubB, append(clip[10:], clip...), 60)
	go fb.run(ctx)
	defer func() { <-fb.done }()

	select {
	case au := <-v.AccessUnits():
		if !client.IsIDR(au.NALUs) {
			t.Error("first frame from the new publisher is not a keyframe")
		}
	case <-v.Done():
		t.Fatal("viewer closed after the takeover")
	case <-ctx.Done():
		t.Fatal("no frame from the new publisher")
	}
	for range 10 {
		select {
		case <-v.AccessUnits():
		case <-ctx.Done():
			t.Fatal("frames stopped after the takeover")
		}
	}
	select {
	case <-v.Done():
		t.Fatal("viewer connection ended")
	default:
	}
	after, maxJump := watch.snapshot()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if after[k] <= beforeCount[k] {
			t.Errorf("%s: no packets after the takeover", k)
		}
		if maxJump[k] != 1 {
			t.Errorf("%s: sequence numbers jumped by %d", k, maxJump[k])
		}
	}
	// Timestamps continue by about the wall-clock pause (well under 10 s),
	// not by the new publisher's random offset.
	watch.mu.Lock()
	defer watch.mu.Unlock()
	if d := watch.maxTS[webrtc.RTPCodecTypeVideo]; d > 10*90000 {
		t.Errorf("video timestamps jumped by %d ticks (%.1f s)", d, float64(d)/90000)
	}
	if d := watch.maxTS[webrtc.RTPCodecTypeAudio]; d > 10*48000 {
		t.Errorf("audio timestamps jumped by %d ticks (%.1f s)", d, float64(d)/48000)
	}
	if st := v.Stats(); st.VideoGaps != 0 {
		t.Errorf("viewer saw %d video gaps", st.VideoGaps)
	}
}
