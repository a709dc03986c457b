package tap

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/transcode"
)

// readAll reads a subscription until the stream's end (bounded by time
// and count).
func readAll(t testing.TB, s *Subscription) []*Unit {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*Unit
	for range 100000 {
		u, err := s.Next(ctx)
		if errors.Is(err, hub.ErrEnded) {
			return out
		}
		if err != nil {
			t.Fatalf("after %d units: %v", len(out), err)
		}
		out = append(out, u)
	}
	t.Fatal("no end")
	return nil
}

func needTranscode(t testing.TB) {
	t.Helper()
	if err := transcode.Available(); err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_TRANSCODE") != "" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestPoolShares: two outputs of a stream with the same options share one
// Reader, so one demand of the derived AAC track and one transcoder, and
// get the same units; an output with other options gets a Reader of its
// own (Opus passes through); the Readers stop with the last subscription,
// the transcoder IdleClose later.
func TestPoolShares(t *testing.T) {
	needTranscode(t)
	base := transcode.Counts().Running
	s, x := newDerivedSource(t, true, true, TranscodersConfig{IdleClose: 20 * time.Millisecond})
	p := NewPool()
	ctx := context.Background()
	a, err := p.Open(ctx, s.Stream, Options{Audio: AudioAAC})
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Open(ctx, s.Stream, Options{Audio: AudioAAC})
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Open(ctx, s.Stream, Options{Audio: AudioOpus})
	if err != nil {
		t.Fatal(err)
	}
	if n := p.Running(); n != 2 {
		t.Errorf("%d readers for two AAC and one Opus subscription, want 2", n)
	}
	waitRunning(t, x, 1)
	waitCount(t, base+1)
	d, err := p.Open(ctx, s.Stream, Options{Audio: AudioAAC})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if p.Running() != 2 || x.Running() != 1 {
		t.Errorf("a reader or transcoder stopped while others read it")
	}
	if a.Audio() == nil || a.Audio().Codec != AAC || a.Audio() != b.Audio() || c.Audio().Codec != Opus {
		t.Fatalf("audio tracks %+v %+v %+v", a.Audio(), b.Audio(), c.Audio())
	}

	s.Feed(0, 48)
	waitDerived(t, s.Stream, a.Audio().Index, 40)
	s.Writer.End()
	ua, ub, uc := readAll(t, a), readAll(t, b), readAll(t, c)
	if len(ua) < 60 || len(ua) != len(ub) {
		t.Fatalf("%d and %d units, want the same, at least 60", len(ua), len(ub))
	}
	for i := range ua {
		if ua[i] != ub[i] {
			t.Fatalf("unit %d differs between subscribers of one reader", i)
		}
	}
	if !ua[0].Key || !ua[0].Track.IsVideo() || !uc[0].Key || !uc[0].Track.IsVideo() {
		t.Errorf("first units %+v, %+v: want video keyframes", ua[0], uc[0])
	}
	checkOrder(t, ua)
	checkOrder(t, uc)

	a.Close()
	b.Close()
	c.Close()
	a.Close() // twice is harmless
	if n := p.Running(); n != 0 {
		t.Errorf("%d readers after the last subscription closed", n)
	}
	waitRunning(t, x, 0)
	waitCount(t, base)
}

// TestPoolLateAndBehind: a subscriber that joins late starts at the
// newest keyframe held; one that fell further behind than the feed holds
// goes on at the first keyframe still held. The feed is filled by hand
// (no Reader), so that what it holds is known.
func TestPoolLateAndBehind(t *testing.T) {
	video := &Track{Codec: H264, ClockRate: 90000}
	audio := &Track{Codec: Opus, ClockRate: 48000}
	f := &feed{video: video, audio: audio, units: make([]*Unit, feedUnits), wake: make(chan struct{})}
	// 25 fps video with a keyframe every 25 frames, 50 audio units/s.
	n := 0 // units pushed
	push := func(frames int) {
		for range frames {
			i := n / 3
			f.push(&Unit{Track: video, PTS: int64(i) * 3600, Key: i%25 == 0, NALUs: [][]byte{{5}}}, nil)
			f.push(&Unit{Track: audio, PTS: int64(2*i) * 960, Payload: []byte{1}}, nil)
			f.push(&Unit{Track: audio, PTS: int64(2*i+1) * 960, Payload: []byte{1}}, nil)
			n += 3
		}
	}
	sub := func() *Subscription {
		s := &Subscription{f: f}
		f.subscribe(s)
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	next := func(s *Subscription) *Unit {
		t.Helper()
		u, err := s.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}

	early := sub() // before any unit
	push(30)       // keyframes at frames 0 and 25
	if u := next(early); u != f.units[0] {
		t.Fatalf("first subscriber's first unit %+v, want the first one made", u)
	}
	late := sub()
	if u := next(late); !u.Key || u.Time() != time.Second {
		t.Fatalf("late subscriber's first unit %+v, want the keyframe at 1 s", u)
	}
	if u := next(late); u.Track != audio || u.Time() != time.Second {
		t.Fatalf("late subscriber's second unit %+v, want the audio at 1 s", u)
	}

	// early reads nothing more while 20 s are made (1500 units, about
	// three times what the feed holds).
	push(500)
	u := next(early)
	oldest := f.units[(f.head-feedUnits)%feedUnits].Time()
	if !u.Key || u.Track != video || u.Time() < oldest || u.Time() >= oldest+time.Second {
		t.Fatalf("after falling behind: %+v at %v, want the first keyframe after %v", u, u.Time(), oldest)
	}
	// From there on it reads every unit in order.
	for range 100 {
		v := next(early)
		if v.Time() < u.Time() {
			t.Fatalf("unit at %v after one at %v", v.Time(), u.Time())
		}
		u = v
	}

	// The end reaches every subscriber once the units are read.
	f.push(nil, hub.ErrEnded)
	for range feedUnits + 1 {
		if _, err := late.Next(ctx); err != nil {
			if !errors.Is(err, hub.ErrEnded) {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatal("no end")
}

// TestPoolOpenErrors: a stream without usable tracks fails every
// subscriber and leaves nothing running; a context that ends first
// abandons the wait.
func TestPoolOpenErrors(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 256, PLIMinInterval: time.Second})
	stW, _ := h.Publish("none", hubtest.NopPublisher{}, nil)
	st := stW.Stream()
	defer stW.End()
	p := NewPool()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Open(ctx, st, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("tracks never added: %v, want the context's error", err)
	}
	if p.Running() != 0 {
		t.Errorf("%d readers after the only subscriber gave up", p.Running())
	}
	stW.End()
	if _, err := p.Open(context.Background(), st, Options{}); !errors.Is(err, hub.ErrEnded) {
		t.Errorf("ended stream: %v, want hub.ErrEnded", err)
	}
	if p.Running() != 0 {
		t.Errorf("%d readers for an ended stream", p.Running())
	}
}

// waitCount polls until the process runs n codec transcoders (a
// transcoder opens its codecs in its own goroutine).
func waitCount(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for transcode.Counts().Running != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d transcoders, want %d", transcode.Counts().Running, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
