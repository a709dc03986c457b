package hub

import (
	"sync"
	"sync/atomic"
)

// Packet is one RTP packet as the publisher sent it, minus the parts every
// viewer rewrites (SSRC, extensions). A packet is immutable while in a
// ring: every viewer shares the same Payload bytes. Its memory is reused
// once the ring and every cursor have moved past it (pool.go): a reader
// reads a packet until its cursor's next call, or copies it.
type Packet struct {
	Pos            uint64 // position in the stream's ring, set by Write
	Gen            uint32 // which publisher of the stream sent it (0, 1, ...), set by Write
	Track          int    // index into Stream.Tracks
	Marker         bool
	PayloadType    uint8
	SequenceNumber uint16
	Timestamp      uint32
	Payload        []byte
	Arrived        int64 // when Write took it, Unix nanoseconds (the hub's clock)
}

// ring is a fixed array of packet slots with one writer and many readers.
// Readers never lock: they load head, then the slot, and compare positions to
// tell a fresh packet from one the writer has already overwritten.
type ring struct {
	slots []atomic.Pointer[Packet]
	mask  uint64
	head  atomic.Uint64 // next position to write

	// Readers that caught up arm their Waiter; the writer signals the
	// armed ones. Nothing is allocated per wait or per packet.
	mu      sync.Mutex
	waiters []*Waiter // armed
	waiting atomic.Bool
}

// Waiter is one reader's wake-up from a stream's writes, used again for
// every wait.
type Waiter struct {
	ch    chan struct{} // one slot: a write's signal waits there until taken
	armed bool          // in the ring's waiters; the ring's mutex guards it
	// frameEnd: a push that leaves a video frame open does not signal
	// it (see Stream.WaitFrameEnd); the ring's mutex guards it.
	frameEnd bool
}

// NewWaiter returns a Waiter for one reader (one goroutine at a time).
func NewWaiter() *Waiter { return &Waiter{ch: make(chan struct{}, 1)} }

func newRing(size int) *ring {
	return &ring{
		slots: make([]atomic.Pointer[Packet], size),
		mask:  uint64(size - 1),
	}
}

// push stores p at the head. Only the stream's writer calls it. open
// tells that p leaves a video frame open: waiters armed for the frame's
// end stay armed.
func (r *ring) push(p *Packet, open bool) {
	pos := r.head.Load()
	p.Pos = pos
	r.slots[pos&r.mask].Store(p)
	r.head.Store(pos + 1)
	if r.waiting.Load() {
		r.mu.Lock()
		kept := r.waiters[:0]
		for _, w := range r.waiters {
			if open && w.frameEnd {
				kept = append(kept, w)
				continue
			}
			w.armed = false
			select {
			case w.ch <- struct{}{}:
			default: // already signalled, not taken yet
			}
		}
		clear(r.waiters[len(kept):])
		r.waiters = kept
		r.waiting.Store(len(kept) > 0)
		r.mu.Unlock()
	}
}

// get returns the packet at pos: ok=false with lagged=false if it is not
// written yet, lagged=true if the writer has already overwritten it.
func (r *ring) get(pos uint64) (p *Packet, lagged bool) {
	if pos >= r.head.Load() {
		return nil, false
	}
	p = r.slots[pos&r.mask].Load()
	if p == nil || p.Pos != pos {
		return nil, true
	}
	return p, false
}

// arm returns w's channel, which the next push signals. The caller must
// check head again after taking it. A signal may be left from a push
// whose packets the caller has already read: a spurious wake-up, which
// the caller's check absorbs.
func (r *ring) arm(w *Waiter, frameEnd bool) <-chan struct{} {
	r.mu.Lock()
	w.frameEnd = frameEnd
	if !w.armed {
		w.armed = true
		r.waiters = append(r.waiters, w)
	}
	r.waiting.Store(true)
	r.mu.Unlock()
	return w.ch
}

// oldest is the lowest position still held.
func (r *ring) oldest() uint64 {
	h := r.head.Load()
	if n := uint64(len(r.slots)); h > n {
		return h - n
	}
	return 0
}
