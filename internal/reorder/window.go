// Package reorder puts the RTP packets of one track back into sequence
// order before they reach the stream's ring. A Window holds packets that
// arrived after a gap until the gap is filled (by reordering or by a
// retransmission) or until a bound is hit: too many packets held, or the
// oldest held packet waited too long. Then the window gives up on the gap
// and releases what it holds, in order. Duplicates and packets that come
// after the window moved past them are dropped and counted.
//
// A Window belongs to one goroutine and takes the time as an argument, so
// that tests drive it with a fake clock.
package reorder

import (
	"sync/atomic"
	"time"
)

// Defaults for Config fields left zero.
const (
	DefaultPackets  = 64
	DefaultMaxDelay = 100 * time.Millisecond
	// MaxPackets bounds Config.Packets.
	MaxPackets = 4096
)

// resyncDistance is how far behind the window a packet must be to count as
// a possible restart of the sender's sequence numbers (a new encoder, an
// SFU switching sources) rather than a late packet. Two consecutive such
// packets move the window to them.
const resyncDistance = 2048

// Config bounds a window.
type Config struct {
	// Packets is the most packets held while waiting for a missing one
	// (DefaultPackets if 0, at most MaxPackets).
	Packets int
	// MaxDelay is the longest a packet is held (DefaultMaxDelay if 0).
	MaxDelay time.Duration
}

// Stats counts what a window did. The counters may be read from any
// goroutine.
type Stats struct {
	Released   atomic.Uint64 // packets passed on
	Reordered  atomic.Uint64 // packets that arrived after a later one and were put back in order
	Duplicates atomic.Uint64 // dropped: already held or already released
	Late       atomic.Uint64 // dropped: the window had given up on them
	Lost       atomic.Uint64 // sequence numbers given up on
	Resyncs    atomic.Uint64 // sequence restarts followed
}

// Status says what Push did with a packet.
type Status uint8

// Push results.
const (
	InOrder   Status = iota // released at once (with any packets it unblocked)
	Filled                  // filled a gap: an out-of-order or retransmitted packet
	Held                    // ahead of a gap: held until the gap is filled or given up
	Duplicate               // dropped: seen before
	Late                    // dropped: the window had moved past it
)

type slotState uint8

const (
	slotEmpty    slotState = iota
	slotHeld               // v is waiting
	slotReleased           // v was passed on (kept to spot duplicates)
	slotLost               // given up on (kept to count late arrivals)
)

type slot[T any] struct {
	v      T
	seq    uint16
	state  slotState
	at     int64 // held: arrival time; empty: when last NACKed (0 = never)
	nacked bool
}

// Window reorders one track. The zero value is not usable; call New.
type Window[T any] struct {
	release  func(v T, lost int)
	maxHeld  int
	maxDelay int64
	slots    []slot[T]
	mask     uint16
	epoch    time.Time

	started bool
	next    uint16 // next sequence number to release
	highest uint16 // highest held sequence number, valid when held > 0
	held    int
	oldest  int64 // earliest arrival among held packets, valid when held > 0
	pending int   // sequence numbers given up on since the last release

	stray      uint16 // last packet far behind the window
	strayValid bool

	stats Stats
}

// New returns a window that passes packets, in sequence order, to release.
// lost is how many sequence numbers right before v were given up on, so
// that a caller can react to unrecoverable loss (ask for a keyframe).
// release runs on the goroutine that calls Push or Expire.
func New[T any](cfg Config, release func(v T, lost int)) *Window[T] {
	if cfg.Packets <= 0 {
		cfg.Packets = DefaultPackets
	}
	cfg.Packets = min(cfg.Packets, MaxPackets)
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	// Slots span twice the held bound, so that the state of released
	// and lost sequence numbers stays visible while later ones are held.
	n := 1
	for n < 2*cfg.Packets {
		n <<= 1
	}
	return &Window[T]{
		release:  release,
		maxHeld:  cfg.Packets,
		maxDelay: int64(cfg.MaxDelay),
		slots:    make([]slot[T], n),
		mask:     uint16(n - 1),
	}
}

// Stats returns the window's counters.
func (w *Window[T]) Stats() *Stats { return &w.stats }

// Push adds a packet with sequence number seq that arrived at now, and
// releases whatever is now in order.
func (w *Window[T]) Push(seq uint16, v T, now time.Time) Status {
	if !w.started {
		w.started = true
		w.epoch = now
		w.next = seq
	}
	t := int64(now.Sub(w.epoch))
	d := seq - w.next
	if d >= 0x8000 { // behind next
		return w.behind(seq, v, t)
	}
	w.strayValid = false
	if d == 0 {
		filled := w.held > 0
		w.emit(seq, v)
		w.drain()
		if !filled {
			return InOrder
		}
		w.stats.Reordered.Add(1)
		w.refreshOldest()
		return Filled
	}
	// Ahead of a gap. Make room: the slots must reach seq, and at most
	// maxHeld packets may wait.
	if int(d) >= len(w.slots) {
		w.skipTo(seq - uint16(len(w.slots)) + 1)
		d = seq - w.next
		if d == 0 {
			w.emit(seq, v)
			w.drain()
			return InOrder
		}
	}
	s := &w.slots[seq&w.mask]
	if s.state == slotHeld && s.seq == seq {
		w.stats.Duplicates.Add(1)
		return Duplicate
	}
	fills := w.held > 0 && seq-w.next < w.highest-w.next
	*s = slot[T]{v: v, seq: seq, state: slotHeld, at: t}
	if w.held == 0 || t < w.oldest {
		w.oldest = t
	}
	if w.held == 0 || seq-w.next > w.highest-w.next {
		w.highest = seq
	}
	w.held++
	for w.held > w.maxHeld {
		w.giveUpHead()
	}
	if fills {
		w.stats.Reordered.Add(1)
		return Filled
	}
	return Held
}

// behind handles a packet before next: a duplicate, a late arrival, or a
// sender that restarted its sequence numbers.
func (w *Window[T]) behind(seq uint16, v T, t int64) Status {
	back := w.next - seq
	if back > resyncDistance {
		if w.strayValid && seq == w.stray+1 {
			// Two in a row far behind: the sender restarted. Release
			// what is held and follow the new numbers.
			w.strayValid = false
			if w.held > 0 {
				w.skipTo(w.highest + 1)
			}
			w.stats.Resyncs.Add(1)
			w.clearSlots()
			w.next = seq
			w.emit(seq, v)
			return InOrder
		}
		w.stray, w.strayValid = seq, true
		w.stats.Late.Add(1)
		return Late
	}
	s := &w.slots[seq&w.mask]
	if int(back) <= len(w.slots) && s.seq == seq && s.state == slotReleased {
		w.stats.Duplicates.Add(1)
		return Duplicate
	}
	w.stats.Late.Add(1)
	return Late
}

// Expire gives up on gaps whose held packets have waited MaxDelay by now,
// and releases what follows them.
func (w *Window[T]) Expire(now time.Time) {
	if w.held == 0 {
		return
	}
	t := int64(now.Sub(w.epoch))
	for w.held > 0 && t-w.oldest >= w.maxDelay {
		w.giveUpHead()
	}
}

// Deadline is when Expire next has something to do; ok is false when
// nothing is held.
func (w *Window[T]) Deadline() (time.Time, bool) {
	if w.held == 0 {
		return time.Time{}, false
	}
	return w.epoch.Add(time.Duration(w.oldest + w.maxDelay)), true
}

// Held is the number of packets waiting for a gap to be filled.
func (w *Window[T]) Held() int { return w.held }

// Missing appends to dst, up to max of them, the sequence numbers the
// window waits for that were not NACKed within retry before now, marks
// them NACKed at now and returns dst. A retry of 0 returns only those never
// NACKed.
func (w *Window[T]) Missing(dst []uint16, max int, now time.Time, retry time.Duration) []uint16 {
	if w.held == 0 {
		return dst
	}
	t := int64(now.Sub(w.epoch))
	for seq := w.next; seq != w.highest && len(dst) < max; seq++ {
		s := &w.slots[seq&w.mask]
		if s.state == slotHeld && s.seq == seq {
			continue
		}
		if s.seq != seq || s.state != slotEmpty {
			*s = slot[T]{seq: seq}
		}
		if s.nacked && (retry <= 0 || t-s.at < int64(retry)) {
			continue
		}
		s.nacked, s.at = true, t
		dst = append(dst, seq)
	}
	return dst
}

// emit releases v as sequence number seq and advances next past it.
func (w *Window[T]) emit(seq uint16, v T) {
	w.slots[seq&w.mask] = slot[T]{seq: seq, state: slotReleased}
	w.next = seq + 1
	lost := w.pending
	w.pending = 0
	w.stats.Released.Add(1)
	w.release(v, lost)
}

// drain releases held packets from next on while they are consecutive.
func (w *Window[T]) drain() {
	for w.held > 0 {
		s := &w.slots[w.next&w.mask]
		if s.state != slotHeld || s.seq != w.next {
			return
		}
		v := s.v
		w.held--
		w.emit(w.next, v)
	}
}

// giveUpHead gives up on the missing sequence numbers at the head of the
// window, up to the first held packet, and releases the run that follows.
func (w *Window[T]) giveUpHead() {
	for w.held > 0 {
		s := &w.slots[w.next&w.mask]
		if s.state == slotHeld && s.seq == w.next {
			break
		}
		w.markLost(w.next)
		w.next++
	}
	w.drain()
	w.refreshOldest()
}

// skipTo moves next to target, releasing held packets before it in order
// and giving up on the missing ones.
func (w *Window[T]) skipTo(target uint16) {
	for w.held > 0 && target-w.next < 0x8000 && w.next != target {
		s := &w.slots[w.next&w.mask]
		if s.state == slotHeld && s.seq == w.next {
			v := s.v
			w.held--
			w.emit(w.next, v)
			continue
		}
		w.markLost(w.next)
		w.next++
	}
	if gap := target - w.next; gap < 0x8000 && gap > 0 {
		// Nothing held in between: give up on the whole range at once.
		w.pending += int(gap)
		w.stats.Lost.Add(uint64(gap))
		w.next = target
	}
	w.drain()
	w.refreshOldest()
}

func (w *Window[T]) markLost(seq uint16) {
	w.slots[seq&w.mask] = slot[T]{seq: seq, state: slotLost}
	w.pending++
	w.stats.Lost.Add(1)
}

// refreshOldest recomputes the earliest arrival among held packets after
// some were released. It scans at most the slots, and only runs when
// packets are held behind a gap.
func (w *Window[T]) refreshOldest() {
	if w.held == 0 {
		return
	}
	first := true
	for seq := w.next; ; seq++ {
		s := &w.slots[seq&w.mask]
		if s.state == slotHeld && s.seq == seq && (first || s.at < w.oldest) {
			w.oldest, first = s.at, false
		}
		if seq == w.highest {
			return
		}
	}
}

func (w *Window[T]) clearSlots() {
	clear(w.slots)
	w.held = 0
	w.pending = 0
}
