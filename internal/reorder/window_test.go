package reorder

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// rec collects what a window releases.
type rec struct {
	seqs []uint16
	lost []int
}

func newRec(cfg Config) (*Window[uint16], *rec) {
	r := &rec{}
	w := New(cfg, func(v uint16, lost int) {
		r.seqs = append(r.seqs, v)
		r.lost = append(r.lost, lost)
	})
	return w, r
}

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// step is one event of a table case: a packet arriving at ms, or (expire)
// the clock reaching ms.
type step struct {
	ms     int
	seq    uint16
	expire bool
	want   Status
}

var cases = []struct {
	name     string
	cfg      Config
	steps    []step
	released []uint16
	lost     []int // per released packet
	stats    [5]uint64
}{
	{
		name:     "in order",
		steps:    []step{{0, 10, false, InOrder}, {1, 11, false, InOrder}, {2, 12, false, InOrder}},
		released: []uint16{10, 11, 12},
		lost:     []int{0, 0, 0},
	},
	{
		name:     "swap",
		steps:    []step{{0, 10, false, InOrder}, {1, 12, false, Held}, {2, 11, false, Filled}, {3, 13, false, InOrder}},
		released: []uint16{10, 11, 12, 13},
		lost:     []int{0, 0, 0, 0},
		stats:    [5]uint64{1, 0, 0, 0},
	},
	{
		name: "two gaps filled backwards",
		steps: []step{{0, 1, false, InOrder}, {1, 3, false, Held}, {2, 5, false, Held},
			{3, 4, false, Filled}, {4, 2, false, Filled}},
		released: []uint16{1, 2, 3, 4, 5},
		lost:     []int{0, 0, 0, 0, 0},
		stats:    [5]uint64{2, 0, 0, 0},
	},
	{
		name: "duplicates held and released",
		steps: []step{{0, 1, false, InOrder}, {1, 1, false, Duplicate}, {2, 3, false, Held},
			{3, 3, false, Duplicate}, {4, 2, false, Filled}, {5, 2, false, Duplicate}},
		released: []uint16{1, 2, 3},
		lost:     []int{0, 0, 0},
		stats:    [5]uint64{1, 3, 0, 0},
	},
	{
		name: "wrap",
		steps: []step{{0, 65534, false, InOrder}, {1, 0, false, Held}, {2, 65535, false, Filled},
			{3, 2, false, Held}, {4, 1, false, Filled}},
		released: []uint16{65534, 65535, 0, 1, 2},
		lost:     []int{0, 0, 0, 0, 0},
		stats:    [5]uint64{2, 0, 0, 0},
	},
	{
		name: "gap expires after max delay, late packet dropped",
		cfg:  Config{MaxDelay: 100 * time.Millisecond},
		steps: []step{{0, 1, false, InOrder}, {10, 3, false, Held}, {50, 4, false, Held},
			{109, 0, true, 0}, {110, 0, true, 0}, {120, 2, false, Late}, {121, 5, false, InOrder}},
		released: []uint16{1, 3, 4, 5},
		lost:     []int{0, 1, 0, 0},
		stats:    [5]uint64{0, 0, 1, 1},
	},
	{
		name: "second gap keeps its own deadline",
		cfg:  Config{MaxDelay: 100 * time.Millisecond},
		steps: []step{{0, 1, false, InOrder}, {10, 3, false, Held}, {60, 5, false, Held},
			{110, 0, true, 0}, {159, 0, true, 0}, {160, 0, true, 0}},
		released: []uint16{1, 3, 5},
		lost:     []int{0, 1, 1},
		stats:    [5]uint64{0, 0, 0, 2},
	},
	{
		name: "packet bound gives up the oldest gap",
		cfg:  Config{Packets: 2},
		steps: []step{{0, 1, false, InOrder}, {1, 3, false, Held}, {2, 4, false, Held},
			{3, 5, false, Held}, {4, 2, false, Late}},
		released: []uint16{1, 3, 4, 5},
		lost:     []int{0, 1, 0, 0},
		stats:    [5]uint64{0, 0, 1, 1},
	},
	{
		name:     "jump past the slots",
		cfg:      Config{Packets: 4},
		steps:    []step{{0, 1, false, InOrder}, {1, 3, false, Held}, {2, 100, false, Held}, {3, 101, false, Held}},
		released: []uint16{1, 3},
		lost:     []int{0, 1},
		// 8 slots: 100 needs next >= 93 and 101 next >= 94, so 2 and
		// 4..93 are given up.
		stats: [5]uint64{0, 0, 0, 91},
	},
	{
		name: "sender restart far behind",
		steps: []step{{0, 10000, false, InOrder}, {1, 10001, false, InOrder}, {2, 7, false, Late},
			{3, 8, false, InOrder}, {4, 9, false, InOrder}},
		released: []uint16{10000, 10001, 8, 9},
		lost:     []int{0, 0, 0, 0},
		stats:    [5]uint64{0, 0, 1, 0},
	},
}

func TestWindow(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, r := newRec(c.cfg)
			for i, s := range c.steps {
				if s.expire {
					w.Expire(at(s.ms))
					continue
				}
				if got := w.Push(s.seq, s.seq, at(s.ms)); got != s.want {
					t.Fatalf("step %d: Push(%d) = %d, want %d", i, s.seq, got, s.want)
				}
			}
			if !slices.Equal(r.seqs, c.released) {
				t.Errorf("released %v, want %v", r.seqs, c.released)
			}
			if !slices.Equal(r.lost, c.lost) {
				t.Errorf("lost %v, want %v", r.lost, c.lost)
			}
			st := w.Stats()
			got := [5]uint64{st.Reordered.Load(), st.Duplicates.Load(), st.Late.Load(), st.Lost.Load()}
			if got != c.stats {
				t.Errorf("stats (reordered, duplicates, late, lost) = %v, want %v", got[:4], c.stats[:4])
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	w, r := newRec(Config{MaxDelay: 100 * time.Millisecond})
	if _, ok := w.Deadline(); ok {
		t.Fatal("deadline with nothing held")
	}
	w.Push(1, 1, at(0))
	w.Push(3, 3, at(20))
	w.Push(4, 4, at(30))
	if d, ok := w.Deadline(); !ok || !d.Equal(at(120)) {
		t.Fatalf("deadline %v %v, want %v", d, ok, at(120))
	}
	w.Expire(at(119))
	if len(r.seqs) != 1 || w.Held() != 2 {
		t.Fatalf("released %v before the deadline", r.seqs)
	}
	w.Expire(at(120))
	if !slices.Equal(r.seqs, []uint16{1, 3, 4}) || w.Held() != 0 {
		t.Fatalf("released %v, held %d", r.seqs, w.Held())
	}
	if _, ok := w.Deadline(); ok {
		t.Fatal("deadline after everything was released")
	}
}

func TestMissingNACKRetry(t *testing.T) {
	w, _ := newRec(Config{})
	w.Push(10, 10, at(0))
	w.Push(13, 13, at(1))
	if got := w.Missing(nil, 100, at(1), 30*time.Millisecond); !slices.Equal(got, []uint16{11, 12}) {
		t.Fatalf("first Missing = %v", got)
	}
	if got := w.Missing(nil, 100, at(2), 30*time.Millisecond); len(got) != 0 {
		t.Fatalf("Missing again within retry = %v", got)
	}
	w.Push(16, 16, at(5)) // reveals 14, 15
	if got := w.Missing(nil, 100, at(5), 30*time.Millisecond); !slices.Equal(got, []uint16{14, 15}) {
		t.Fatalf("Missing after new gap = %v", got)
	}
	w.Push(11, 11, at(6))
	if got := w.Missing(nil, 100, at(31), 30*time.Millisecond); !slices.Equal(got, []uint16{12}) {
		t.Fatalf("Missing at retry = %v, want [12]", got)
	}
	if got := w.Missing(nil, 100, at(40), 0); len(got) != 0 {
		t.Fatalf("Missing with retry 0 = %v", got)
	}
	w.Push(20, 20, at(41)) // 17..19 missing; ask for two at most
	if got := w.Missing(nil, 2, at(41), 0); !slices.Equal(got, []uint16{17, 18}) {
		t.Fatalf("Missing with max 2 = %v", got)
	}
	if got := w.Missing(nil, 2, at(42), 0); !slices.Equal(got, []uint16{19}) {
		t.Fatalf("Missing for the rest = %v", got)
	}
}

// TestRandomTraffic checks the invariants on a lossy, reordering, duplicating
// stream: released in order without repeats, nothing held beyond the
// bounds, every packet either released or counted.
func TestRandomTraffic(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			checkRandom(t, rand.New(rand.NewPCG(seed, 7)), 20000)
		})
	}
}

func checkRandom(t *testing.T, rng *rand.Rand, n int) {
	cfg := Config{Packets: 16, MaxDelay: 50 * time.Millisecond}
	var released []uint16
	w := New(cfg, func(v uint16, _ int) { released = append(released, v) })
	type arrival struct {
		seq uint16
		ms  int
	}
	var in []arrival
	seq := uint16(65000)
	for i := range n {
		seq++
		if rng.IntN(100) < 5 {
			continue // lost
		}
		ms := i*2 + rng.IntN(40) // jitter up to 20 packets
		in = append(in, arrival{seq, ms})
		if rng.IntN(100) < 2 {
			in = append(in, arrival{seq, ms + rng.IntN(80)}) // duplicate or retransmission
		}
	}
	slices.SortStableFunc(in, func(a, b arrival) int { return a.ms - b.ms })
	for _, a := range in {
		w.Expire(at(a.ms))
		w.Push(a.seq, a.seq, at(a.ms))
		if w.Held() > cfg.Packets {
			t.Fatalf("holds %d packets, bound %d", w.Held(), cfg.Packets)
		}
		if d, ok := w.Deadline(); ok && d.Before(at(a.ms)) {
			t.Fatalf("deadline %v already passed at %v", d, at(a.ms))
		}
	}
	w.Expire(at(1 << 30))
	for i := 1; i < len(released); i++ {
		if d := released[i] - released[i-1]; d == 0 || d >= 0x8000 {
			t.Fatalf("released %d after %d", released[i], released[i-1])
		}
	}
	st := w.Stats()
	if got := st.Released.Load() + st.Duplicates.Load() + st.Late.Load(); got != uint64(len(in)) {
		t.Fatalf("released+duplicates+late = %d, pushed %d", got, len(in))
	}
	t.Logf("pushed %d: released %d, reordered %d, duplicates %d, late %d, lost %d",
		len(in), st.Released.Load(), st.Reordered.Load(), st.Duplicates.Load(), st.Late.Load(), st.Lost.Load())
}

// FuzzWindow feeds arbitrary sequence numbers and clock steps: two bytes of
// sequence number and one of milliseconds per packet.
func FuzzWindow(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 3, 5, 0, 2, 1, 0, 4, 200})
	f.Add([]byte{0xff, 0xfe, 0, 0, 1, 1, 0xff, 0xff, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var last uint16
		n := 0
		var w *Window[uint16]
		var resyncs uint64
		w = New(Config{Packets: 8, MaxDelay: 30 * time.Millisecond}, func(v uint16, _ int) {
			// A sender restart (resync) may go backwards; nothing else.
			if r := w.Stats().Resyncs.Load(); r != resyncs {
				resyncs, n = r, 0
			}
			// Forward is less than half the number space from the
			// next expected one (last+1).
			if d := v - last; n > 0 && (d == 0 || d > 0x8000) {
				t.Fatalf("released %d after %d", v, last)
			}
			last = v
			n++
		})
		ms := 0
		for i := 0; i+3 <= len(b); i += 3 {
			ms += int(b[i+2])
			w.Expire(at(ms))
			seq := uint16(b[i])<<8 | uint16(b[i+1])
			w.Push(seq, seq, at(ms))
			w.Missing(nil, 100, at(ms), 10*time.Millisecond)
			if w.Held() > 8 {
				t.Fatalf("holds %d", w.Held())
			}
		}
	})
}

func BenchmarkWindow(b *testing.B) {
	b.Run("in-order", func(b *testing.B) {
		w := New(Config{}, func(*int, int) {})
		var p int
		now := t0
		b.ReportAllocs()
		seq := uint16(0)
		for b.Loop() {
			w.Push(seq, &p, now)
			seq++
		}
	})
	b.Run("reordered", func(b *testing.B) {
		// Every pair swapped and every 50th packet late by 10: a
		// jittery network.
		w := New(Config{}, func(*int, int) {})
		var p int
		now := t0
		order := make([]uint16, 1000)
		for i := range order {
			order[i] = uint16(i)
		}
		for i := 0; i+1 < len(order); i += 2 {
			order[i], order[i+1] = order[i+1], order[i]
		}
		for i := 0; i+10 < len(order); i += 50 {
			v := order[i]
			copy(order[i:], order[i+1:i+11])
			order[i+10] = v
		}
		b.ReportAllocs()
		base := uint16(0)
		i := 0
		for b.Loop() {
			w.Push(base+order[i], &p, now)
			if i++; i == len(order) {
				i = 0
				base += uint16(len(order))
			}
		}
		if w.Stats().Late.Load() > 0 {
			b.Fatal("late packets in benchmark")
		}
	})
}
