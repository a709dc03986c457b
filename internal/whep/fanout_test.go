package whep

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// lockedWriter counts what a worker writes, for a test reading alongside.
type lockedWriter struct {
	mu   sync.Mutex
	seqs []uint16
}

func (w *lockedWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	w.seqs = append(w.seqs, h.SequenceNumber)
	w.mu.Unlock()
	return len(payload), nil
}

func (w *lockedWriter) Write(b []byte) (int, error) { return len(b), nil }

func (w *lockedWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs)
}

// waitCount waits until w has n packets, or fails after 5 s.
func waitCount(t *testing.T, w *lockedWriter, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d packets forwarded after 5 s, want %d", w.count(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// frameRig is one viewer of a one-track H264 stream, forwarded by its own
// Fanout.
type frameRig struct {
	st      *hub.Writer
	s       *Session
	w       *lockedWriter
	seq     uint16
	payload []byte
}

func newFrameRig(t *testing.T, frameWait time.Duration) *frameRig {
	h264 := media.Codec{MimeType: "video/H264", ClockRate: 90000}
	hb := hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: time.Second, MaxViewersPerStream: 1})
	stW, err := hb.Publish("frames", nopPublisher{}, []media.Codec{h264})
	if err != nil {
		t.Fatal(err)
	}
	st := stW.Stream()
	stW.AddTrack(h264)
	cur, err := st.Join()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cur.Close)
	ot := newOutTrack(h264, "s")
	w := &lockedWriter{}
	ot.bound.Store(&binding{ssrc: 1, pt: 102, w: w})
	s := &Session{stream: st, cursor: cur, tracks: []*outTrack{ot}, reportedAt: time.Now().Add(time.Hour)}
	f := NewFanout()
	f.frameWait = frameWait
	f.add(s)
	t.Cleanup(func() { f.remove(s) })
	// The worker's first passes (at start, and for the kick of add) are
	// unconditional: let them go by.
	for deadline := time.Now().Add(5 * time.Second); s.worker.passes.Load() < 2; {
		if time.Now().After(deadline) {
			t.Fatal("the worker did not start")
		}
		time.Sleep(time.Millisecond)
	}
	payload := make([]byte, 1000)
	payload[0] = 0x65 // an IDR slice: the cursor starts at a keyframe
	return &frameRig{st: stW, s: s, w: w, payload: payload}
}

func (r *frameRig) write(marker bool, ts uint32) {
	r.st.Write(&hub.Packet{Marker: marker, SequenceNumber: r.seq, Timestamp: ts, Payload: r.payload})
	r.seq++
}

// TestWorkerPassesPerFrame: the egress worker forwards a video frame in
// one pass when its last packet (the marker) arrives, not one pass per
// packet, and forwards a frame whose marker never comes after frameWait.
func TestWorkerPassesPerFrame(t *testing.T) {
	r := newFrameRig(t, time.Hour)
	// A frame's first packets wait for its last.
	r.write(false, 0)
	r.write(false, 0)
	time.Sleep(50 * time.Millisecond)
	if n := r.w.count(); n != 0 {
		t.Fatalf("%d packets of an unfinished frame forwarded, want 0 until its marker", n)
	}
	r.write(true, 0)
	waitCount(t, r.w, 3)

	const frames, perFrame = 20, 8
	passes := r.s.worker.passes.Load()
	for i := range frames {
		for j := range perFrame {
			r.write(j == perFrame-1, uint32(i+1)*3000)
		}
		waitCount(t, r.w, int(r.seq))
	}
	if n := r.s.worker.passes.Load() - passes; n > frames*perFrame/2 {
		t.Errorf("%d passes for %d frames of %d packets, want about one per frame", n, frames, perFrame)
	}

	// Packets of a frame spaced out, so that the worker waits again
	// between them: only a frame's first packet and its last wake it.
	wakes := r.s.worker.wakes.Load()
	for i := range frames {
		for j := range perFrame {
			r.write(j == perFrame-1, uint32(frames+i+1)*3000)
			time.Sleep(time.Millisecond)
		}
		waitCount(t, r.w, int(r.seq))
	}
	if n := r.s.worker.wakes.Load() - wakes; n > frames*3 {
		t.Errorf("%d wake-ups for %d frames of %d packets, want at most 2 per frame and a few spurious", n, frames, perFrame)
	}

	// With the default wait, a frame whose last packet is lost is
	// forwarded all the same.
	r = newFrameRig(t, frameWait)
	for range 3 {
		r.write(false, 0)
	}
	waitCount(t, r.w, 3)
}
