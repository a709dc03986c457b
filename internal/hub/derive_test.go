package hub

import (
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// TestRewindTrack: a cursor at the head of an audio-only stream goes back
// to the newest packets of the track that span the ticks asked, bounded
// by the slots asked and by what the ring holds; a cursor already further
// back stays there.
func TestRewindTrack(t *testing.T) {
	h := New(Config{RingPackets: 16, PLIMinInterval: time.Second})
	pcma := media.Codec{MimeType: "audio/PCMA", ClockRate: 8000, Channels: 1}
	w, err := h.Publish("a", &fakePub{}, []media.Codec{opus, pcma})
	if err != nil {
		t.Fatal(err)
	}
	defer w.End()
	a, b := w.AddTrack(opus), w.AddTrack(pcma)
	for i := range 20 { // the ring holds the last 16
		w.Write(&Packet{Track: a, SequenceNumber: uint16(i), Timestamp: uint32(i * 960), Payload: []byte{1}})
		if i%2 == 1 {
			w.Write(&Packet{Track: b, SequenceNumber: uint16(i), Timestamp: uint32(i * 160), Payload: []byte{2}})
		}
	}
	first := func(rewind func(c *Cursor)) *Packet {
		t.Helper()
		c, err := w.Stream().Tap()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		rewind(c)
		p, _, ok, err := c.TryNext()
		if err != nil || !ok {
			t.Fatalf("nothing to read after the rewind: %v", err)
		}
		return p
	}
	// 3×960 ticks back from packet 19: packet 16, with the PCMA
	// packets between.
	if p := first(func(c *Cursor) { c.RewindTrack(a, 3*960, 64) }); p.Track != a || p.SequenceNumber != 16 {
		t.Errorf("rewound to track %d packet %d, want track %d packet 16", p.Track, p.SequenceNumber, a)
	}
	// 4 slots back at most: PCMA 19, Opus 19, Opus 18, PCMA 17.
	if p := first(func(c *Cursor) { c.RewindTrack(a, 48000, 4) }); p.Track != b || p.SequenceNumber != 17 {
		t.Errorf("rewound to track %d packet %d, want track %d packet 17", p.Track, p.SequenceNumber, b)
	}
	// A whole second asked: the oldest held (16 slots: Opus 9 is the
	// oldest of positions 14..29).
	p := first(func(c *Cursor) { c.RewindTrack(a, 48000, 64) })
	if p.Pos != w.Stream().ring.oldest() {
		t.Errorf("rewound to position %d, want the oldest held, %d", p.Pos, w.Stream().ring.oldest())
	}
	// Never forward.
	if p := first(func(c *Cursor) { c.pos = c.s.ring.oldest(); c.RewindTrack(a, 960, 64) }); p.Pos != w.Stream().ring.oldest() {
		t.Errorf("a cursor at the oldest packet moved to %d", p.Pos)
	}
}
