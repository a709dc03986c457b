package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

var (
	h264  = media.Codec{MimeType: "video/H264", ClockRate: 90000}
	opus  = media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	sps   = []byte{0x67, 0x42, 0xe0, 0x1f}
	pps   = []byte{0x68, 0xce, 0x3c, 0x80}
	idr   = []byte{0x65, 0x88, 0x84}
	slice = []byte{0x41, 0x9a, 0x02}
	audio = []byte{0xf8, 0xff, 0xfe}
)

type fakePub struct{ keyframes atomic.Int32 }

func (f *fakePub) RequestKeyframe() { f.keyframes.Add(1) }

func newTestStream(t testing.TB, ring int) (*Hub, *Stream, *fakePub) {
	t.Helper()
	h := New(Config{RingPackets: ring, PLIMinInterval: time.Second, MaxViewersPerStream: 3})
	pub := &fakePub{}
	sW, err := h.Publish("live", pub, []media.Codec{h264, opus})
	if err != nil {
		t.Fatal(err)
	}
	s := sW.Stream()
	if s.addTrack(h264) != 0 || s.addTrack(opus) != 1 {
		t.Fatal("unexpected track indexes")
	}
	return h, s, pub
}

// writer feeds a stream with GOPs of one SPS+PPS+IDR access unit followed by
// P slices, interleaved with audio.
type writer struct {
	s   *Stream
	seq [2]uint16
	ts  uint32
}

func (w *writer) write(track int, ts uint32, payload []byte) {
	w.seq[track]++
	w.s.write(&Packet{Track: track, SequenceNumber: w.seq[track], Timestamp: ts, Payload: payload})
}

func (w *writer) frame(key bool) {
	w.ts += 3000
	if key {
		w.write(0, w.ts, sps)
		w.write(0, w.ts, pps)
		w.write(0, w.ts, idr)
	} else {
		w.write(0, w.ts, slice)
	}
	w.write(1, w.ts, audio)
}

func next(t *testing.T, c *Cursor) (*Packet, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, restart, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return p, restart
}

func TestPublishTwiceIsBusy(t *testing.T) {
	h, _, _ := newTestStream(t, 256)
	if _, err := h.Publish("live", &fakePub{}, []media.Codec{opus}); !errors.Is(err, ErrBusy) {
		t.Fatalf("err = %v, want ErrBusy", err)
	}
	if _, err := h.Lookup("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

func TestReadyAfterAllTracks(t *testing.T) {
	h := New(Config{RingPackets: 256, PLIMinInterval: time.Second})
	sW, _ := h.Publish("x", &fakePub{}, []media.Codec{h264, opus})
	s := sW.Stream()
	s.addTrack(h264)
	select {
	case <-s.Ready():
		t.Fatal("ready with one of two tracks")
	default:
	}
	s.addTrack(opus)
	<-s.Ready()
}

func TestJoinStartsAtCachedKeyframe(t *testing.T) {
	_, s, pub := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(true)
	w.frame(false)
	w.frame(true) // the newest keyframe: SPS at ring position 6
	w.frame(false)

	c, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := [][]byte{sps, pps, idr, audio, slice, audio}
	for i, w := range want {
		p, restart := next(t, c)
		if string(p.Payload) != string(w) {
			t.Fatalf("packet %d = %x, want %x", i, p.Payload, w)
		}
		if restart != (i == 0 || i == 3) {
			t.Fatalf("packet %d restart = %v", i, restart)
		}
	}
	if n := pub.keyframes.Load(); n != 0 {
		t.Fatalf("keyframe requested %d times with a cached keyframe", n)
	}
}

func TestJoinWithoutKeyframeWaitsAndAsks(t *testing.T) {
	_, s, pub := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(false)
	c, _ := s.Join()
	defer c.Close()
	if pub.keyframes.Load() != 1 {
		t.Fatalf("keyframe requests = %d, want 1", pub.keyframes.Load())
	}
	w.frame(false) // dropped video, delivered audio
	w.frame(true)
	got := []string{}
	for range 5 {
		p, _ := next(t, c)
		got = append(got, string(p.Payload))
	}
	want := []string{string(audio), string(sps), string(pps), string(idr), string(audio)}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("packet %d = %x, want %x", i, got[i], want[i])
		}
	}
}

// TestJoinDuringKeyframe: a cursor that joins after a keyframe's SPS and
// PPS were written but before its IDR slice starts at that keyframe, not a
// GOP later.
func TestJoinDuringKeyframe(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(false)
	w.ts += 3000
	w.write(0, w.ts, sps)
	w.write(0, w.ts, pps)
	c, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w.write(0, w.ts, idr)
	w.write(1, w.ts, audio)
	want := []string{string(sps), string(pps), string(idr), string(audio)}
	for i := range want {
		p, _ := next(t, c)
		if string(p.Payload) != want[i] {
			t.Fatalf("packet %d = %x, want %x", i, p.Payload, want[i])
		}
	}
}

func TestLaggingCursorSkipsToKeyframe(t *testing.T) {
	_, s, _ := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(true)
	c, _ := s.Join()
	defer c.Close()
	next(t, c) // SPS
	// Overrun the ring several times while the cursor sleeps.
	for i := range 300 {
		w.frame(i%50 == 0)
	}
	p, restart := next(t, c)
	if string(p.Payload) != string(sps) || !restart {
		t.Fatalf("after lag got %x restart=%v, want SPS with restart", p.Payload, restart)
	}
	if c.Skips() == 0 {
		t.Fatal("skip not counted")
	}
}

func TestViewerLimitAndEnd(t *testing.T) {
	h, s, _ := newTestStream(t, 256)
	var cs []*Cursor
	for range 3 {
		c, err := s.Join()
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	if _, err := s.Join(); !errors.Is(err, ErrTooManyViewers) {
		t.Fatalf("err = %v, want ErrTooManyViewers", err)
	}
	cs[0].Close()
	cs[0].Close() // idempotent
	if s.Viewers() != 2 {
		t.Fatalf("viewers = %d", s.Viewers())
	}
	done := make(chan error)
	go func() {
		_, _, err := cs[1].Next(context.Background())
		done <- err
	}()
	s.end(ErrEnded)
	if err := <-done; !errors.Is(err, ErrEnded) {
		t.Fatalf("Next after End = %v", err)
	}
	if _, err := h.Lookup("live"); !errors.Is(err, ErrNotFound) {
		t.Fatal("ended stream still registered")
	}
	if _, err := h.Publish("live", &fakePub{}, []media.Codec{opus}); err != nil {
		t.Fatalf("republish after end: %v", err)
	}
}

func TestRequestKeyframeRateLimited(t *testing.T) {
	_, s, pub := newTestStream(t, 256)
	for range 10 {
		s.RequestKeyframe()
	}
	if n := pub.keyframes.Load(); n != 1 {
		t.Fatalf("keyframe requests = %d, want 1", n)
	}
}

// TestConcurrentReaders runs under -race: one writer, several readers, each
// reader sees its track's sequence numbers strictly increasing.
func TestConcurrentReaders(t *testing.T) {
	_, s, _ := newTestStream(t, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		c, err := s.Join()
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer c.Close()
			var last [2]uint16
			for {
				p, restart, err := c.Next(ctx)
				if err != nil {
					if !errors.Is(err, ErrEnded) {
						t.Errorf("Next: %v", err)
					}
					return
				}
				if !restart && p.SequenceNumber <= last[p.Track] {
					t.Errorf("track %d seq %d after %d", p.Track, p.SequenceNumber, last[p.Track])
					return
				}
				last[p.Track] = p.SequenceNumber
			}
		})
	}
	w := &writer{s: s}
	for i := range 5000 {
		w.frame(i%30 == 0)
	}
	s.end(ErrEnded)
	wg.Wait()
}

func TestAwait(t *testing.T) {
	h := New(Config{RingPackets: 256, PLIMinInterval: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan *Stream)
	go func() {
		s, err := h.Await(ctx, "late")
		if err != nil {
			t.Error(err)
		}
		got <- s
	}()
	h.Publish("other", &fakePub{}, []media.Codec{opus})
	sW, _ := h.Publish("late", &fakePub{}, []media.Codec{opus})
	s := sW.Stream()
	if <-got != s {
		t.Fatal("Await returned another stream")
	}
	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	if _, err := h.Await(short, "never"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await of a stream never published: %v", err)
	}
}
