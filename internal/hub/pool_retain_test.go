package hub

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// gopWriter writes video GOPs (an SPS, PPS, IDR access unit, then one
// packet P frames) and an audio packet per frame; every payload carries
// its sequence number and is padded to 1000 bytes, so that a reused
// packet shows.
type gopWriter struct {
	w        *Writer
	seq      [2]uint16
	ts       uint32
	gop, buf []byte
}

func (g *gopWriter) packet(track int, head []byte, marker bool) {
	g.seq[track]++
	g.buf = append(g.buf[:0], head...)
	g.buf = append(g.buf, byte(g.seq[track]>>8), byte(g.seq[track]))
	for len(g.buf) < 1000 {
		g.buf = append(g.buf, byte(g.seq[track])*3+byte(len(g.buf)))
	}
	g.w.Write(&Packet{Track: track, Marker: marker, SequenceNumber: g.seq[track], Timestamp: g.ts, Payload: g.buf})
}

func (g *gopWriter) frames(n, gop int) {
	for range n {
		g.ts += 3000
		if int(g.seq[0])%gop < 3 {
			g.packet(0, sps, false)
			g.packet(0, pps, false)
			g.packet(0, idr, true)
		} else {
			g.packet(0, slice, true)
		}
		g.packet(1, audio, true)
	}
}

// intact reports whether p's payload is the one gopWriter wrote for it.
func intact(p *Packet) bool {
	n := len(p.Payload)
	if n != 1000 {
		return false
	}
	var head int
	for _, h := range [][]byte{sps, pps, idr, slice, audio} {
		if bytes.HasPrefix(p.Payload, h) {
			head = len(h)
		}
	}
	if head == 0 || p.Payload[head] != byte(p.SequenceNumber>>8) || p.Payload[head+1] != byte(p.SequenceNumber) {
		return false
	}
	for i := head + 2; i < n; i++ {
		if p.Payload[i] != byte(p.SequenceNumber)*3+byte(i) {
			return false
		}
	}
	return true
}

// TestPoolRetainsAboutOneGOP: with readers keeping up, a stream's memory
// is about its newest keyframe interval and retainPackets, not the
// ring's 4096 packets: chunks are reused once behind both. A viewer
// joining at any time still gets the whole cached GOP intact, and a
// reader that stalls holds its memory, then skips to the newest keyframe
// and reads intact packets (run with -race).
func TestPoolRetainsAboutOneGOP(t *testing.T) {
	h := New(Config{RingPackets: 4096, PLIMinInterval: time.Second})
	w, err := h.Publish("gop", &fakePub{}, []media.Codec{h264, opus})
	if err != nil {
		t.Fatal(err)
	}
	w.AddTrack(h264)
	w.AddTrack(opus)
	s := w.Stream()
	g := &gopWriter{w: w}
	const gop = 150 // video packets per keyframe interval (300 packets with audio)

	// A live reader beside the writer, checking every packet.
	live, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var liveErr error
	var liveN int
	wg.Go(func() {
		for {
			p, _, err := live.Next(ctx)
			if err != nil {
				return
			}
			liveN++
			if !intact(p) && liveErr == nil {
				liveErr = errAt(p)
			}
		}
	})
	g.frames(1, gop)
	for round := range 20 {
		g.frames(gop, gop)
		// A viewer joining now gets the GOP cache: from the keyframe,
		// every packet intact.
		v, err := s.Join()
		if err != nil {
			t.Fatal(err)
		}
		first := true
		for {
			p, _, ok, err := v.TryNext()
			if err != nil || !ok {
				break
			}
			if first && p.Track == 0 && !bytes.HasPrefix(p.Payload, sps) {
				t.Fatalf("round %d: a new viewer starts at % x, not the keyframe", round, p.Payload[:4])
			}
			first = false
			if !intact(p) {
				t.Fatalf("round %d: a new viewer: %v", round, errAt(p))
			}
		}
		v.Close()
		time.Sleep(time.Millisecond) // let the live reader keep up
	}
	cancel()
	wg.Wait()
	if liveErr != nil {
		t.Fatalf("the live reader: %v", liveErr)
	}
	if liveN == 0 {
		t.Fatal("the live reader read nothing")
	}
	// Memory: what a GOP (300 packets) and retainPackets (512) take, in
	// chunks of 64 packets, a few more for readers a little behind; not
	// the 64 chunks of the 4096-packet ring.
	made, reused, _ := s.PoolStats()
	if limit := uint64((2*gop+retainPackets)/chunkPackets + 8); made > limit {
		t.Fatalf("%d chunks made (%d reused) for %d packets: want at most %d", made, reused, 20*2*gop, limit)
	}
	if reused == 0 {
		t.Fatal("no chunk reused")
	}

	// A stalled reader holds its memory (chunks behind it go to the
	// collector instead of being reused); when it reads on, after the
	// ring has lapped it, it skips to the newest keyframe, and what it
	// reads is intact.
	stalled, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if p, _, ok, _ := stalled.TryNext(); !ok || !intact(p) {
		t.Fatal("the stalled reader's first packet")
	}
	g.frames(15*gop, gop) // 4500 packets: past the 4096-packet ring
	for {
		p, _, ok, err := stalled.TryNext()
		if err != nil || !ok {
			break
		}
		if !intact(p) {
			t.Fatalf("the stalled reader: %v", errAt(p))
		}
	}
	if stalled.Skips() == 0 {
		t.Error("the stalled reader did not skip ahead")
	}
	if _, _, dropped := s.PoolStats(); dropped == 0 {
		t.Error("no chunk was left to the collector while a reader held it")
	}
}

func errAt(p *Packet) error {
	return fmt.Errorf("packet %d of track %d at %d changed under its reader", p.SequenceNumber, p.Track, p.Pos)
}

// TestPoolJoinRacesReuse: viewers join while the writer runs and read
// only once the writer has gone retainPackets past them, so that the
// chunks where they were placed are reused behind a newer keyframe
// before they published their holds: each finds its place gone, skips to
// the newest keyframe, and reads intact packets (with -race). The
// ordering that keeps a reader from the reused packet itself (the slots
// emptied before the holds are checked, see pool.go) is a memory-order
// argument the race detector sees only when the accesses meet.
func TestPoolJoinRacesReuse(t *testing.T) {
	h := New(Config{RingPackets: 4096, PLIMinInterval: time.Second})
	w, err := h.Publish("race", &fakePub{}, []media.Codec{h264, opus})
	if err != nil {
		t.Fatal(err)
	}
	w.AddTrack(h264)
	w.AddTrack(opus)
	s := w.Stream()
	g := &gopWriter{w: w}
	g.frames(600, 10) // past retainPackets, keyframes every 10 video packets
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			g.frames(20, 10)
		}
	})
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(2 * time.Second)
	var skipped int
	for i := 0; i < 300 && time.Now().Before(deadline); i++ {
		v, err := s.Join()
		if err != nil {
			t.Fatal(err)
		}
		// Until the writer has gone retainPackets past the viewer.
		for at := s.ring.head.Load(); s.ring.head.Load() < at+retainPackets+uint64(i%3)*chunkPackets; {
			runtime.Gosched()
		}
		for n := 0; n < 200; n++ {
			p, _, ok, err := v.TryNext()
			if err != nil || !ok {
				break
			}
			if !intact(p) {
				v.Close()
				t.Fatalf("viewer %d: %v", i, errAt(p))
			}
		}
		if v.Skips() > 0 {
			skipped++
		}
		v.Close()
	}
	if skipped == 0 {
		t.Fatal("no viewer was placed behind the floor: the race was not run")
	}
}
