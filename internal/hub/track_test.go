package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

func TestPacketBySequenceNumber(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	w := &writer{s: s, seq: [2]uint16{65530, 100}}
	for i := range 20 {
		w.frame(i == 0)
	}
	// Video: 3 packets for the keyframe, then one per frame: 22 packets
	// from 65531 on, wrapping to 0.
	p, ok := s.Packet(0, 65531, nil)
	if !ok || string(p.Payload) != string(sps) {
		t.Fatalf("Packet(0, 65531) = %v, %v; want the SPS", p, ok)
	}
	if p, ok := s.Packet(0, 3, nil); !ok || p.SequenceNumber != 3 || p.Track != 0 {
		t.Fatalf("Packet(0, 3) after wrap = %v, %v", p, ok)
	}
	if _, ok := s.Packet(0, 200, nil); ok {
		t.Fatal("found a sequence number never written")
	}
	if p, ok := s.Packet(1, 101, nil); !ok || string(p.Payload) != string(audio) {
		t.Fatalf("Packet(1, 101) = %v, %v", p, ok)
	}
	if _, ok := s.Packet(5, 1, nil); ok {
		t.Fatal("found a packet of a track that does not exist")
	}
	// Overwrite the ring: the old packets are gone, not mixed up.
	for range 300 {
		w.frame(false)
	}
	if _, ok := s.Packet(0, 65531, nil); ok {
		t.Fatal("found a packet the ring no longer holds")
	}
}

func TestWallClock(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	if _, ok := s.WallClock(0, 1); ok {
		t.Fatal("wall clock before any sender report")
	}
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	s.setSenderReport(0, media.ToNTP(base), 90000)
	s.setSenderReport(1, media.ToNTP(base.Add(-250*time.Millisecond)), 4000000000)
	for _, c := range []struct {
		track int
		rtp   uint32
		want  time.Duration
	}{
		{0, 90000, 0},
		{0, 90000 + 45000, 500 * time.Millisecond},
		{0, 90000 - 9000, -100 * time.Millisecond},
		{1, 4000000000 + 48000, 750 * time.Millisecond},
		{1, 4000000000 + 400000000 - 1<<32, 400000000*time.Second/48000 - 250*time.Millisecond}, // wrapped past 2^32
	} {
		got, ok := s.WallClock(c.track, c.rtp)
		if !ok {
			t.Fatal("no wall clock")
		}
		if d := got.Sub(base) - c.want; d < -time.Microsecond || d > time.Microsecond {
			t.Errorf("track %d rtp %d: %v, want base%+v", c.track, c.rtp, got.Sub(base), c.want)
		}
	}
}

func TestVideoInfo(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	if _, ok := s.VideoInfo(0); ok {
		t.Fatal("info before any was set")
	}
	s.setVideoInfo(0, media.VideoInfo{Width: 320, Height: 240, Profile: "Constrained Baseline", Level: "3.1"})
	if got, ok := s.VideoInfo(0); !ok || got.Width != 320 || got.Level != "3.1" {
		t.Fatalf("VideoInfo = %+v, %v", got, ok)
	}
}

// fakeClock is a clock that moves only when told to.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestRequestKeyframeRateLimitClock(t *testing.T) {
	clk := &fakeClock{now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	h := New(Config{RingPackets: 256, PLIMinInterval: time.Second, Now: clk.Now})
	pub := &fakePub{}
	sW, _ := h.Publish("x", pub, []media.Codec{h264})
	s := sW.Stream()
	if !s.RequestKeyframe() {
		t.Fatal("first request not passed on")
	}
	clk.advance(999 * time.Millisecond)
	if s.RequestKeyframe() {
		t.Fatal("request within the interval passed on")
	}
	clk.advance(time.Millisecond)
	if !s.RequestKeyframe() {
		t.Fatal("request after the interval not passed on")
	}
	if n := pub.keyframes.Load(); n != 2 {
		t.Fatalf("publisher got %d requests, want 2", n)
	}
}
