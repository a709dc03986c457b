package hub

import (
	"errors"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

func newGraceHub(grace time.Duration) *Hub {
	return New(Config{RingPackets: 256, PLIMinInterval: time.Second, ReconnectGrace: grace})
}

// TestReconnectContinues: publisher A leaves, B arrives within the grace
// period with other sequence numbers and timestamps; the viewer's cursor
// keeps going, B's packets continue A's numbering, and video resumes at
// B's keyframe.
func TestReconnectContinues(t *testing.T) {
	h := newGraceHub(time.Minute)
	a := &fakePub{}
	sW, err := h.Publish("live", a, []media.Codec{h264, opus})
	if err != nil {
		t.Fatal(err)
	}
	s := sW.Stream()
	s.addTrack(h264)
	s.addTrack(opus)
	wa := &writer{s: s}
	wa.frame(true)
	wa.frame(false)
	c, _ := s.Join()
	defer c.Close()
	for range 6 { // SPS PPS IDR audio slice audio
		next(t, c)
	}
	lastVideoSeq, lastVideoTS := wa.seq[0], wa.ts

	s.detach(&fakePub{}) // not the publisher: ignored
	if s.Detached() {
		t.Fatal("a stranger detached the stream")
	}
	sW.Detach()
	if !s.Detached() {
		t.Fatal("not detached")
	}
	if _, err := h.Lookup("live"); err != nil {
		t.Fatal("detached stream left the registry")
	}
	b := &fakePub{}
	s2W, err := h.Publish("live", b, []media.Codec{opus, h264})
	if err != nil || s2W.Stream() != s {
		t.Fatalf("takeover: %v, same stream %v", err, s2W.Stream() == s)
	}
	if s.addTrack(opus) != 1 || s.addTrack(h264) != 0 {
		t.Fatal("new publisher's tracks not mapped onto the old ones")
	}
	// B numbers from elsewhere; its first video is a P slice, then a keyframe.
	wb := &writer{s: s, seq: [2]uint16{40000, 50000}, ts: 123456}
	wb.frame(false)
	wb.frame(true)
	want := []string{string(audio), string(sps), string(pps), string(idr), string(audio)}
	for i, w := range want {
		p, restart := next(t, c)
		if string(p.Payload) != w {
			t.Fatalf("packet %d after takeover = %x, want %x", i, p.Payload, w)
		}
		if p.Track == 0 && string(p.Payload) == string(sps) {
			if p.SequenceNumber != lastVideoSeq+2 { // +1 for the dropped P slice
				t.Errorf("video seq %d after takeover, want %d", p.SequenceNumber, lastVideoSeq+2)
			}
			if d := p.Timestamp - lastVideoTS; d == 0 || d > 90000 {
				t.Errorf("video timestamp jumped by %d ticks", d)
			}
			if !restart {
				t.Error("first video packet of the new publisher not marked restart")
			}
		}
	}
	if s.RequestKeyframe(); b.keyframes.Load() != 1 || a.keyframes.Load() != 0 {
		t.Fatal("keyframe request did not go to the new publisher")
	}
}

func TestReconnectCodecChangeEnds(t *testing.T) {
	h := newGraceHub(time.Minute)
	a := &fakePub{}
	sW, _ := h.Publish("live", a, []media.Codec{h264})
	s := sW.Stream()
	s.addTrack(h264)
	c, _ := s.Join()
	defer c.Close()
	sW.Detach()
	vp8 := media.Codec{MimeType: "video/VP8", ClockRate: 90000}
	s2W, err := h.Publish("live", &fakePub{}, []media.Codec{vp8})
	s2 := s2W.Stream()
	if err != nil || s2 == s {
		t.Fatalf("publish with a new codec: %v, same stream %v", err, s2 == s)
	}
	<-s.Done()
	if _, _, err := c.Next(t.Context()); !errors.Is(err, ErrCodecChanged) {
		t.Fatalf("viewer of the old stream got %v, want ErrCodecChanged", err)
	}
	if got, _ := h.Lookup("live"); got != s2 {
		t.Fatal("the new stream is not registered")
	}
}

func TestReconnectGraceExpires(t *testing.T) {
	h := newGraceHub(20 * time.Millisecond)
	a := &fakePub{}
	sW, _ := h.Publish("live", a, []media.Codec{opus})
	s := sW.Stream()
	s.addTrack(opus)
	if _, err := h.Publish("live", &fakePub{}, []media.Codec{opus}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second publisher while the first is live: %v", err)
	}
	sW.Detach()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("stream did not end after the grace period")
	}
	if _, err := h.Lookup("live"); !errors.Is(err, ErrNotFound) {
		t.Fatal("ended stream still registered")
	}

	h0 := newGraceHub(0)
	s0W, _ := h0.Publish("now", a, []media.Codec{opus})
	s0 := s0W.Stream()
	s0W.Detach()
	select {
	case <-s0.Done():
	default:
		t.Fatal("without grace the stream must end at once")
	}
}
