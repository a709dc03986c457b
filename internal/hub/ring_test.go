package hub

import "testing"

// TestRingWaiters: a push signals every armed waiter once; arming again
// before a push lists a waiter once; waiting and signalling allocate
// nothing.
func TestRingWaiters(t *testing.T) {
	r := newRing(8)
	a, b := NewWaiter(), NewWaiter()
	cha := r.arm(a, false)
	r.arm(a, false)
	chb := r.arm(b, false)
	if len(r.waiters) != 2 {
		t.Fatalf("%d waiters listed, want 2", len(r.waiters))
	}
	select {
	case <-cha:
		t.Fatal("signalled before a push")
	default:
	}
	r.push(&Packet{}, false)
	for _, ch := range []<-chan struct{}{cha, chb} {
		select {
		case <-ch:
		default:
			t.Fatal("an armed waiter was not signalled")
		}
	}
	r.push(&Packet{}, false) // nobody armed: no signal
	select {
	case <-cha:
		t.Fatal("signalled without being armed")
	default:
	}
	pkts := make([]Packet, 200)
	n := 0
	if allocs := testing.AllocsPerRun(100, func() {
		ch := r.arm(a, false)
		r.push(&pkts[n], false)
		n++
		<-ch
	}); allocs != 0 {
		t.Errorf("%v allocations per wait, want 0", allocs)
	}
}

// TestRingFrameEndWaiter: a waiter armed for a frame's end is not
// signalled by pushes that leave the frame open, and stays armed for the
// push that ends it; a plain waiter beside it is signalled by every push.
func TestRingFrameEndWaiter(t *testing.T) {
	r := newRing(8)
	f, a := NewWaiter(), NewWaiter()
	chf := r.arm(f, true)
	cha := r.arm(a, false)
	r.push(&Packet{}, true)
	select {
	case <-chf:
		t.Fatal("a frame-end waiter was signalled by a packet inside the frame")
	default:
	}
	select {
	case <-cha:
	default:
		t.Fatal("a plain waiter was not signalled")
	}
	if !r.waiting.Load() || len(r.waiters) != 1 {
		t.Fatalf("waiting %v with %d waiters, want the frame-end waiter kept", r.waiting.Load(), len(r.waiters))
	}
	r.push(&Packet{}, false)
	select {
	case <-chf:
	default:
		t.Fatal("the frame's last packet did not signal the frame-end waiter")
	}
	if r.waiting.Load() || len(r.waiters) != 0 {
		t.Fatalf("waiting %v with %d waiters after the frame ended, want none", r.waiting.Load(), len(r.waiters))
	}
	// Arming again as a plain waiter: the next packet signals, open or not.
	chf = r.arm(f, true)
	chf = r.arm(f, false)
	r.push(&Packet{}, true)
	select {
	case <-chf:
	default:
		t.Fatal("a waiter armed again as plain was not signalled")
	}
}
