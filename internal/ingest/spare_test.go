package ingest

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// TestTrackNoAllocs: in steady state a packet costs no allocation from
// its arrival to the ring, reordered ones included (the window's packets
// are spares used again, the hub copies into memory it reuses), with
// readers attached; and what the readers get is what was sent.
func TestTrackNoAllocs(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: time.Second})
	w, err := h.Publish("live", nil, []media.Codec{h264Codec})
	if err != nil {
		t.Fatal(err)
	}
	in := NewTrack(Options{}, TrackConfig{Index: w.AddTrack(h264Codec), Codec: h264Codec}, w)
	var cursors []*hub.Cursor
	for range 2 {
		c, err := w.Stream().Join()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		cursors = append(cursors, c)
	}
	payload := func(buf []byte, seq uint16) []byte {
		buf = append(buf[:0], 0x41) // a P slice
		if seq%256 == 0 {
			buf[0] = 0x65 // an IDR slice: the readers start there
		}
		for i := range 1100 + int(seq)%100 {
			buf = append(buf, byte(int(seq)+i))
		}
		return buf
	}
	var bufs [2][]byte
	var want []byte
	var h0, h1 rtp.Header
	seq := uint16(0)
	now := time.Unix(1000, 0)
	read := 0
	drain := func() {
		for _, c := range cursors {
			for {
				p, _, ok, err := c.TryNext()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if want = payload(want, p.SequenceNumber); !bytes.Equal(p.Payload, want) {
					t.Fatalf("packet %d: payload changed", p.SequenceNumber)
				}
				read++
			}
		}
	}
	// Two packets per call, every fourth pair swapped (reordered).
	pair := func() {
		h0 = rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq/4) * 3000, Marker: seq%4 == 3}
		h1 = rtp.Header{SequenceNumber: seq + 1, Timestamp: uint32((seq+1)/4) * 3000, Marker: (seq+1)%4 == 3}
		bufs[0], bufs[1] = payload(bufs[0], seq), payload(bufs[1], seq+1)
		now = now.Add(5 * time.Millisecond)
		if seq%8 == 4 {
			in.received(&h1, bufs[1], now)
			in.received(&h0, bufs[0], now)
		} else {
			in.received(&h0, bufs[0], now)
			in.received(&h1, bufs[1], now)
		}
		seq += 2
		if seq%32 == 0 {
			drain()
		}
	}
	for range 2048 { // warm up: the ring laps, the pool fills
		pair()
	}
	// 512 packets a run: AllocsPerRun rounds down, so one allocation in
	// a run (a chunk of ring memory, ~55 packets) shows.
	if allocs := testing.AllocsPerRun(20, func() {
		for range 256 {
			pair()
		}
	}); allocs != 0 {
		t.Errorf("%v allocations per 512 ingested packets, want 0", allocs)
	}
	drain()
	if read == 0 {
		t.Fatal("the readers read nothing")
	}
	if _, reused, _ := w.Stream().PoolStats(); reused == 0 {
		t.Fatal("no ring memory reused")
	}
}

// TestSpares: a spare holds its own copy of the payload, and a packet
// taken back is handed out again.
func TestSpares(t *testing.T) {
	var s spares
	a := s.packet([]byte{1, 2, 3})
	a.SequenceNumber = 9
	src := []byte{4, 5}
	b := s.packet(src)
	src[0] = 0
	if !bytes.Equal(a.Payload, []byte{1, 2, 3}) || !bytes.Equal(b.Payload, []byte{4, 5}) {
		t.Fatalf("payloads %v %v", a.Payload, b.Payload)
	}
	s.put(a)
	c := s.packet([]byte{6})
	if c != a || c.SequenceNumber != 0 || !bytes.Equal(c.Payload, []byte{6}) {
		t.Fatalf("spare not reused clean: %+v", c)
	}
}

// BenchmarkTrackIngest is one packet's way from the network to the ring
// (ingest.Track with its reorder window, then the hub's Write), 1200-byte
// payloads, with 3 readers draining: B/op is the garbage per ingested
// packet, allocs/op the allocations.
func BenchmarkTrackIngest(b *testing.B) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second})
	w, err := h.Publish("live", nil, []media.Codec{opusCodec})
	if err != nil {
		b.Fatal(err)
	}
	in := NewTrack(Options{}, TrackConfig{Index: w.AddTrack(opusCodec), Codec: opusCodec}, w)
	var cursors []*hub.Cursor
	for range 3 {
		c, err := w.Stream().Join()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		cursors = append(cursors, c)
	}
	payload := make([]byte, 1200)
	var hdr rtp.Header
	now := time.Unix(1000, 0)
	var seq uint16
	b.ReportAllocs()
	for b.Loop() {
		seq++
		hdr = rtp.Header{SequenceNumber: seq, Timestamp: uint32(seq) * 960}
		now = now.Add(time.Millisecond)
		in.received(&hdr, payload, now)
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
}
