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

// poolPayload is the payload of the packet with sequence number seq:
// its length and every byte depend on seq, so that a packet whose
// memory was reused under it shows.
func poolPayload(buf []byte, seq uint16) []byte {
	n := 40 + int(seq)%1160
	buf = buf[:0]
	for i := range n {
		buf = append(buf, byte(int(seq)*7+i*13))
	}
	return buf
}

// checkPacket fails if p is not intact: its payload is not the one its
// sequence number was written with.
func checkPacket(p *Packet, scratch []byte) error {
	if want := poolPayload(scratch, p.SequenceNumber); !bytes.Equal(p.Payload, want) {
		return fmt.Errorf("packet %d at %d: payload of %d bytes changed (want %d)", p.SequenceNumber, p.Pos, len(p.Payload), len(want))
	}
	return nil
}

// newPoolStream is a stream of one audio track (no keyframe logic: every
// packet is delivered) and a writer that reuses its one packet, as
// ingest does.
func newPoolStream(t testing.TB, ring int) (*Stream, func(n int)) {
	t.Helper()
	h := New(Config{RingPackets: ring, PLIMinInterval: time.Second})
	w, err := h.Publish("pool", &fakePub{}, []media.Codec{opus})
	if err != nil {
		t.Fatal(err)
	}
	w.AddTrack(opus)
	var src Packet
	var seq uint16
	buf := make([]byte, 0, 1500)
	return w.Stream(), func(n int) {
		for range n {
			seq++
			src = Packet{Track: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 960, Payload: poolPayload(buf, seq)}
			w.Write(&src)
		}
	}
}

// TestPoolStalledReader: a reader that holds a packet while the writer
// laps the ring many times still reads it intact, as does a reader
// reading beside the writer (run with -race: a reuse under a reader is
// a data race); while the stalled reader holds, chunks are left to the
// collector, and once it moves on they are reused.
func TestPoolStalledReader(t *testing.T) {
	const ring = 256
	s, write := newPoolStream(t, ring)
	stalled, err := s.Join() // at the head: audio needs no keyframe
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	write(10)
	kept, _, ok, err := stalled.TryNext()
	if !ok || err != nil {
		t.Fatalf("TryNext: %v %v", ok, err)
	}
	keptSeq, keptPos := kept.SequenceNumber, kept.Pos
	// A reader beside the writer, checking each packet it gets.
	live, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var liveErr error
	var liveRead int
	wg.Go(func() {
		defer live.Close()
		scratch := make([]byte, 0, 1500)
		for {
			p, _, err := live.Next(ctx)
			if err != nil {
				return
			}
			if err := checkPacket(p, scratch); err != nil && liveErr == nil {
				liveErr = err
			}
			liveRead++
		}
	})
	scratch := make([]byte, 0, 1500)
	write(50 * ring)
	if kept.SequenceNumber != keptSeq || kept.Pos != keptPos {
		t.Fatalf("the stalled reader's packet %d at %d is now %d at %d", keptSeq, keptPos, kept.SequenceNumber, kept.Pos)
	}
	if err := checkPacket(kept, scratch); err != nil {
		t.Fatalf("the stalled reader's packet: %v", err)
	}
	made, reused, dropped := s.PoolStats()
	if reused != 0 || dropped == 0 {
		t.Fatalf("while a reader holds: %d chunks made, %d reused, %d dropped; want none reused, some dropped", made, reused, dropped)
	}
	// The stalled reader moves on: it skips to the ring, and reuse
	// starts again once its hold has passed the chunks.
	if _, _, _, err := stalled.TryNext(); err != nil || stalled.Skips() == 0 {
		t.Fatalf("stalled reader: err %v skips %d", err, stalled.Skips())
	}
	write(ring / 2)
	for range ring / 2 {
		p, _, ok, err := stalled.TryNext()
		if !ok || err != nil {
			t.Fatalf("stalled reader after its skip: ok %v err %v", ok, err)
		}
		if err := checkPacket(p, scratch); err != nil {
			t.Fatal(err)
		}
	}
	stalled.Close()
	write(50 * ring)
	cancel()
	wg.Wait()
	if liveErr != nil {
		t.Fatalf("the reader beside the writer: %v", liveErr)
	}
	if liveRead == 0 {
		t.Fatal("the reader beside the writer read nothing")
	}
	// Without readers (the live one fell behind at times, which leaves
	// chunks to the collector too), the pool stops growing: a ring's
	// worth of chunks and a few more, reused.
	made2, reused2, _ := s.PoolStats()
	write(20 * ring)
	made3, reused3, _ := s.PoolStats()
	if reused3 == reused2 {
		t.Fatalf("after the readers left: %d chunks made, none reused", made3-made2)
	}
	if limit := uint64(2*ring/chunkPackets) + 4; made3-made2 > limit {
		t.Errorf("%d chunks made after the readers left, want at most %d", made3-made2, limit)
	}
}

// TestPoolOwnPackets: a reader with OwnPackets keeps what it read as long
// as it likes, and holds nothing back: the ring's memory is reused under
// it.
func TestPoolOwnPackets(t *testing.T) {
	const ring = 256
	s, write := newPoolStream(t, ring)
	c, err := s.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.OwnPackets()
	var kept []*Packet
	for range 20 {
		write(ring / 2)
		for {
			p, _, ok, err := c.TryNext()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			kept = append(kept, p)
		}
	}
	scratch := make([]byte, 0, 1500)
	for _, p := range kept {
		if err := checkPacket(p, scratch); err != nil {
			t.Fatal(err)
		}
	}
	if len(kept) != 20*ring/2 {
		t.Fatalf("read %d packets, want %d", len(kept), 20*ring/2)
	}
	if _, reused, _ := s.PoolStats(); reused == 0 {
		t.Fatal("no chunk reused while an OwnPackets reader kept its copies")
	}
}

// TestPoolNoAllocs: in steady state writing a packet allocates nothing,
// with readers attached (video and audio, a simulcast-free stream).
func TestPoolNoAllocs(t *testing.T) {
	const ring = 1024
	_, s, _ := newTestStream(t, ring)
	var cursors []*Cursor
	for range 3 {
		c, err := s.Join()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cursors = append(cursors, c)
	}
	drain := func() {
		for _, c := range cursors {
			for {
				_, _, ok, err := c.TryNext()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
			}
		}
	}
	var src Packet
	payload := make([]byte, 1200)
	var seq [2]uint16
	n := 0
	one := func() {
		tr := 0
		if n%4 == 3 {
			tr = 1 // audio between the video packets
		}
		seq[tr]++
		pl := payload
		if tr == 0 && n%200 == 0 {
			pl = idr
		}
		src = Packet{Track: tr, SequenceNumber: seq[tr], Timestamp: uint32(n/4) * 3000, Marker: n%4 == 2, Payload: pl}
		s.write(&src)
		n++
		if n%16 == 0 {
			drain()
		}
	}
	for range 4 * ring { // warm up: the pool fills, the cursors' buffers grow
		one()
	}
	// 256 packets a run: AllocsPerRun rounds down, so one allocation in
	// a run (a chunk, 64 packets at most) shows.
	if allocs := testing.AllocsPerRun(16, func() {
		for range 256 {
			one()
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per 256 ingested packets, want 0", allocs)
	}
	if _, reused, _ := s.PoolStats(); reused == 0 {
		t.Fatal("no chunk reused")
	}
}

// BenchmarkIngestWrite measures the hub's write path per ingested packet
// (1200-byte payloads, 3 cursors draining), with the ring's memory reused
// and without (every chunk new, left to the collector as the ring laps
// it: what ingest's slabs cost before reuse). B/op is the garbage per
// ingested packet, B/s@4Mbit/s the garbage a second of such a stream.
func BenchmarkIngestWrite(b *testing.B) {
	for _, reuse := range []bool{true, false} {
		b.Run(fmt.Sprintf("reuse=%v", reuse), func(b *testing.B) {
			_, s, _ := newTestStream(b, 4096)
			s.pool.noReuse = !reuse
			var cursors []*Cursor
			for range 3 {
				c, err := s.Join()
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				cursors = append(cursors, c)
			}
			payload := make([]byte, 1200)
			var src Packet
			var seq uint16
			b.ReportAllocs()
			defer reportGarbage(b)()
			for b.Loop() {
				seq++
				src = Packet{Track: 1, SequenceNumber: seq, Timestamp: uint32(seq) * 960, Payload: payload}
				s.write(&src)
				if seq%64 == 0 {
					for _, c := range cursors {
						for {
							if _, _, ok, _ := c.TryNext(); !ok {
								break
							}
						}
					}
				}
			}
		})
	}
}

// reportGarbage, deferred with its result called, reports the bytes
// allocated per op (one ingested packet) and per second for a stream of
// 4 Mbit/s of 1200-byte packets (about 417 a second).
func reportGarbage(b *testing.B) func() {
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	return func() {
		var m1 runtime.MemStats
		runtime.ReadMemStats(&m1)
		per := float64(m1.TotalAlloc-m0.TotalAlloc) / float64(b.N)
		b.ReportMetric(per*4e6/8/1200, "B/s@4Mbit/s")
	}
}

// TestPoolPacketLookup: NACK lookups (Stream.Packet, from another
// goroutine than any cursor's) get intact copies while the writer laps
// the ring and reuses its memory (run with -race).
func TestPoolPacketLookup(t *testing.T) {
	const ring = 256
	s, write := newPoolStream(t, ring)
	write(ring)
	done := make(chan struct{})
	var wg sync.WaitGroup
	var lookErr error
	found := 0
	wg.Go(func() {
		var buf []byte
		scratch := make([]byte, 0, 1500)
		for back := uint16(0); ; back = (back + 7) % ring {
			select {
			case <-done:
				return
			default:
			}
			packets, _ := s.Ingested() // sequence numbers count from 1
			p, ok := s.Packet(0, uint16(packets)-back, buf)
			if !ok {
				continue
			}
			found++
			buf = p.Payload[:0]
			if err := checkPacket(&p, scratch); err != nil && lookErr == nil {
				lookErr = err
			}
		}
	})
	write(50 * ring)
	close(done)
	wg.Wait()
	if lookErr != nil {
		t.Fatal(lookErr)
	}
	if found == 0 {
		t.Fatal("no packet found")
	}
	if _, reused, _ := s.PoolStats(); reused == 0 {
		t.Fatal("no chunk reused")
	}
}
