package tap

import (
	"bytes"
	"context"
	"slices"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
)

// TestReaderUnitsOutliveRing: units keep their bytes while the reader
// reads on and the ring laps many times, its memory reused
// (hub.Cursor.OwnPackets): outputs (HLS parts, recordings) keep units
// for seconds.
func TestReaderUnitsOutliveRing(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 256, PLIMinInterval: time.Second})
	s := hubtest.NewSource(t, h, "s", true, true)
	t.Cleanup(s.Writer.End)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := Open(ctx, s.Stream, Options{Audio: AudioOpus})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	type kept struct {
		u     *Unit
		bytes [][]byte // copies made when the unit came
	}
	var all []kept
	clone := func(u *Unit) [][]byte {
		out := [][]byte{bytes.Clone(u.Payload)}
		for _, n := range u.NALUs {
			out = append(out, bytes.Clone(n))
		}
		return out
	}
	// 40 rounds of one GOP (25 frames, 50 Opus packets: 75 units, about
	// 125 packets): the 256-packet ring laps about 20 times, and the
	// reader keeps up (all but the newest few units are ready each
	// round).
	for round := 1; round <= 40; round++ {
		s.Feed((round-1)*50, round*50)
		for len(all) < round*75-5 {
			u, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, kept{u, clone(u)})
		}
	}
	for i, k := range all {
		if !slices.EqualFunc(clone(k.u), k.bytes, bytes.Equal) {
			t.Fatalf("unit %d (%s at %v) changed after the ring lapped", i, k.u.Track.Codec, k.u.Time())
		}
	}
	if _, reused, _ := s.Stream.PoolStats(); reused == 0 {
		t.Fatal("no ring memory reused: the test shows nothing")
	}
}
