package hub

import (
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// layerPub records per-track keyframe requests.
type layerPub struct {
	mu     sync.Mutex
	tracks []int
	all    int
}

func (p *layerPub) RequestKeyframe() { p.mu.Lock(); p.all++; p.mu.Unlock() }
func (p *layerPub) RequestTrackKeyframe(track int) {
	p.mu.Lock()
	p.tracks = append(p.tracks, track)
	p.mu.Unlock()
}

func (p *layerPub) requested(track int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, t := range p.tracks {
		if t == track {
			n++
		}
	}
	return n
}

// simulcastWriter sends three layers of one source: every layer's frame
// of one instant in a row, each with its own random sequence numbers and
// timestamps as browsers send them, and a frame size that grows with the
// layer.
type simulcastWriter struct {
	s      *Stream
	tracks [3]int
	seq    [3]uint16
	ts0    [3]uint32
	n      uint32
	clock  *fakeClock
}

func newSimulcastStream(t testing.TB) (*Stream, *simulcastWriter, *layerPub) {
	t.Helper()
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := New(Config{RingPackets: 1024, PLIMinInterval: time.Second, Now: clock.Now})
	pub := &layerPub{}
	sW, err := h.Publish("sc", pub, []media.Codec{h264, h264, h264})
	if err != nil {
		t.Fatal(err)
	}
	s := sW.Stream()
	w := &simulcastWriter{s: s, clock: clock, seq: [3]uint16{100, 40000, 65500}, ts0: [3]uint32{7, 1 << 31, 4e9}}
	for i, rid := range []string{"h", "l", "m"} { // arrival order is not rank order
		w.tracks[i] = s.addLayer(h264, "0", rid)
	}
	select {
	case <-s.Ready():
	default:
		t.Fatal("stream not ready after three layers")
	}
	return s, w, pub
}

// frame writes one frame of every layer, 40 ms after the previous one;
// sizes 8, 1 and 3 payload packets for h, l, m.
func (w *simulcastWriter) frame(key bool) {
	w.clock.advance(40 * time.Millisecond)
	for i, pkts := range []int{8, 1, 3} {
		ts := w.ts0[i] + w.n*3600
		for k := range pkts {
			payload := slice
			if key {
				payload = idr
			}
			if key && k == 0 && pkts > 1 {
				payload = sps
			}
			w.s.write(&Packet{Track: w.tracks[i], SequenceNumber: w.seq[i], Timestamp: ts, Payload: payload, Marker: k == pkts-1})
			w.seq[i]++
		}
	}
	w.n++
}

func TestLayersGroupRankAndAlign(t *testing.T) {
	s, w, _ := newSimulcastStream(t)
	if tr := s.Tracks(); len(tr) != 1 || tr[0].Index != w.tracks[0] {
		t.Fatalf("Tracks = %+v, want the group's leader only", tr)
	}
	if n := s.TrackCount(); n != 3 {
		t.Fatalf("TrackCount = %d, want 3", n)
	}
	for i := range 20 {
		w.frame(i%10 == 0)
	}
	layers := s.Layers(w.tracks[0])
	if len(layers) != 3 {
		t.Fatalf("Layers = %+v", layers)
	}
	for i, rid := range []string{"l", "m", "h"} {
		if layers[i].RID != rid || layers[i].Bitrate <= 0 {
			t.Fatalf("Layers = %+v, want l, m, h with bit rates", layers)
		}
	}
	if s.Layers(99) != nil {
		t.Fatal("Layers of an unknown track")
	}
	// Every layer's timestamps are on the first layer's timeline: the
	// newest packet of each layer has the same timestamp.
	var last [3]uint32
	for i, tr := range w.tracks {
		p, ok := s.Packet(tr, w.seq[i]-1, nil)
		if !ok {
			t.Fatalf("layer %d: newest packet not found", i)
		}
		last[i] = p.Timestamp
	}
	if last[0] != last[1] || last[0] != last[2] {
		t.Fatalf("aligned timestamps differ: %v", last)
	}
}

// TestCursorLayerSwitch follows a cursor across two switches: each
// happens at the target layer's keyframe, never in the middle of a frame,
// the first packet of the new layer is marked restart (sequence numbers
// continue), timestamps never go back, and keyframe requests go to the
// target layer only.
func TestCursorLayerSwitch(t *testing.T) {
	s, w, pub := newSimulcastStream(t)
	hi, lo, mid := w.tracks[0], w.tracks[1], w.tracks[2]
	w.frame(true)
	c, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if cur, _, _ := c.Layer(hi); cur != hi {
		t.Fatalf("a new cursor delivers layer %d, want the leader %d", cur, hi)
	}
	if !c.SetLayer(lo) || c.SetLayer(99) {
		t.Fatal("SetLayer")
	}
	c.SeekKeyframe() // what a viewer does when it connects
	type got struct {
		track   int
		ts      uint32
		restart bool
		key     bool
	}
	var seen []got
	drain := func() {
		for range 1000 {
			p, restart, ok, err := c.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			seen = append(seen, got{p.Track, p.Timestamp, restart, string(p.Payload) != string(slice)})
		}
		t.Fatal("cursor did not catch up")
	}
	drain()
	if len(seen) != 1 || seen[0].track != lo || !seen[0].key {
		t.Fatalf("first delivery %+v, want the low layer's keyframe", seen)
	}
	for range 3 {
		w.frame(false)
	}
	drain()
	// Up to the high layer: nothing changes until its keyframe.
	before := pub.requested(hi)
	c.SetLayer(hi)
	if pub.requested(hi) != before+1 || pub.requested(mid) != 0 {
		t.Fatalf("keyframe requests: high %d (was %d), mid %d; want one for high only", pub.requested(hi), before, pub.requested(mid))
	}
	for range 3 {
		w.frame(false)
	}
	drain()
	for _, g := range seen {
		if g.track != lo {
			t.Fatalf("switched before a keyframe: %+v", g)
		}
	}
	n := len(seen)
	w.frame(true)
	w.frame(false)
	drain()
	after := seen[n:]
	i := 0
	for i < len(after) && after[i].track == lo {
		i++
	}
	if i == len(after) || after[i].track != hi || !after[i].restart || !after[i].key {
		t.Fatalf("after the keyframe: %+v, want the high layer from its keyframe, marked restart", after)
	}
	for _, g := range after[i+1:] {
		if g.track != hi || g.restart {
			t.Fatalf("after the switch: %+v", after)
		}
	}
	for k := 1; k < len(seen); k++ {
		if int32(seen[k].ts-seen[k-1].ts) < 0 {
			t.Fatalf("timestamp went back at %d: %+v", k, seen)
		}
	}
	if c.Switches() != 1 {
		t.Fatalf("Switches = %d, want 1 (the first choice was before any delivery)", c.Switches())
	}
	// Cancel a pending switch: back to the current layer before the
	// target's keyframe changes nothing.
	c.SetLayer(mid)
	c.SetLayer(hi)
	n = len(seen)
	w.frame(true)
	drain()
	for _, g := range seen[n:] {
		if g.track != hi {
			t.Fatalf("cancelled switch happened: %+v", seen[n:])
		}
	}
}

func TestCursorKeyframesOnly(t *testing.T) {
	_, s, pub := newTestStream(t, 256)
	w := &writer{s: s}
	w.frame(true)
	c, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetKeyframesOnly(true)
	var video []*Packet
	var restarts int
	drain := func() {
		for range 1000 {
			p, restart, ok, err := c.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return
			}
			if p.Track == 0 {
				q := *p // a packet is read until the next TryNext (pool.go)
				video = append(video, &q)
				if restart {
					restarts++
				}
			}
		}
	}
	// Mark the last packet of each frame.
	frame := func(key bool) {
		w.ts += 3000
		if key {
			w.write(0, w.ts, sps)
			w.write(0, w.ts, pps)
			w.seq[0]++
			s.write(&Packet{Track: 0, SequenceNumber: w.seq[0], Timestamp: w.ts, Payload: idr, Marker: true})
		} else {
			w.seq[0]++
			s.write(&Packet{Track: 0, SequenceNumber: w.seq[0], Timestamp: w.ts, Payload: slice, Marker: true})
		}
		w.write(1, w.ts, audio)
	}
	drain()
	requests := pub.keyframes.Load()
	for i := range 30 {
		frame(i%10 == 0)
		drain()
	}
	for _, p := range video {
		if string(p.Payload) == string(slice) {
			t.Fatal("a P slice was delivered in keyframes-only mode")
		}
	}
	// The first keyframe (written before, without a marker) runs into
	// the next one; then one restart per keyframe.
	if len(video) != 3+3*3 || restarts != 3 {
		t.Fatalf("delivered %d video packets with %d restarts, want 12 and 3", len(video), restarts)
	}
	if pub.keyframes.Load() != requests {
		t.Fatal("keyframes-only mode asked the publisher for keyframes")
	}
	c.SetKeyframesOnly(false)
	video = video[:0]
	for i := range 12 {
		frame(i == 5)
		drain()
	}
	if pub.keyframes.Load() == requests {
		t.Fatal("leaving keyframes-only mode did not ask for a keyframe")
	}
	if len(video) != 3+6 || string(video[0].Payload) != string(sps) {
		t.Fatalf("after keyframes-only: %d packets, want the keyframe and every frame after it", len(video))
	}
}

// TestSimulcastReconnect: a simulcast publisher that comes back within
// the grace period gets each layer back by its RID, whatever order its
// layers arrive in; each layer's sequence numbers continue the old ones
// and every layer stays on one timeline.
func TestSimulcastReconnect(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1000, 0)}
	h := New(Config{RingPackets: 1024, PLIMinInterval: time.Second, ReconnectGrace: time.Minute, Now: clock.Now})
	a := &layerPub{}
	codecs := []media.Codec{h264, h264, h264}
	sW, err := h.Publish("sc", a, codecs)
	if err != nil {
		t.Fatal(err)
	}
	s := sW.Stream()
	w := &simulcastWriter{s: s, clock: clock, seq: [3]uint16{1, 2, 3}, ts0: [3]uint32{10, 20, 30}}
	for i, rid := range []string{"h", "l", "m"} {
		w.tracks[i] = s.addLayer(h264, "0", rid)
	}
	w.frame(true)
	w.frame(false)
	var lastSeq [3]uint16
	var lastTS uint32
	for i, tr := range w.tracks {
		p, ok := s.Packet(tr, w.seq[i]-1, nil)
		if !ok {
			t.Fatalf("layer %d: last packet not found", i)
		}
		lastSeq[i], lastTS = p.SequenceNumber, p.Timestamp
	}
	sW.Detach()
	clock.advance(time.Second)
	if s2, err := h.Publish("sc", &layerPub{}, codecs); err != nil || s2.Stream() != s {
		t.Fatalf("takeover: %v", err)
	}
	// The new publisher's layers arrive as m, h, l under mid "1".
	old := w.tracks
	w2 := &simulcastWriter{s: s, clock: clock, seq: [3]uint16{9000, 50000, 60000}, ts0: [3]uint32{1 << 30, 5, 3 << 30}}
	w2.tracks[2] = s.addLayer(h264, "1", "m")
	w2.tracks[0] = s.addLayer(h264, "1", "h")
	w2.tracks[1] = s.addLayer(h264, "1", "l")
	if w2.tracks != old {
		t.Fatalf("layers mapped to %v, want %v (by RID)", w2.tracks, old)
	}
	w2.frame(true)
	var ts [3]uint32
	for i, tr := range w2.tracks {
		p, ok := s.Packet(tr, lastSeq[i]+1, nil)
		if !ok {
			t.Fatalf("layer %d: the new publisher's first packet is not numbered %d", i, lastSeq[i]+1)
		}
		ts[i] = p.Timestamp
		if d := p.Timestamp - lastTS; d < 90000*9/10 || d > 90000*11/10 {
			t.Fatalf("layer %d: timestamp moved %d ticks over a 1 s gap", i, d)
		}
	}
	if ts[0] != ts[1] || ts[0] != ts[2] {
		t.Fatalf("layers left the common timeline: %v", ts)
	}
}
