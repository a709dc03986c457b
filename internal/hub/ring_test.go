package hub

import "testing"

// TestRingWaiters: a push signals every armed waiter once; arming again
// before a push lists a waiter once; waiting and signalling allocate
// nothing.
func TestRingWaiters(t *testing.T) {
	r := newRing(8)
	a, b := NewWaiter(), NewWaiter()
	cha := r.arm(a)
	r.arm(a)
	chb := r.arm(b)
	if len(r.waiters) != 2 {
		t.Fatalf("%d waiters listed, want 2", len(r.waiters))
	}
	select {
	case <-cha:
		t.Fatal("signalled before a push")
	default:
	}
	r.push(&Packet{})
	for _, ch := range []<-chan struct{}{cha, chb} {
		select {
		case <-ch:
		default:
			t.Fatal("an armed waiter was not signalled")
		}
	}
	r.push(&Packet{}) // nobody armed: no signal
	select {
	case <-cha:
		t.Fatal("signalled without being armed")
	default:
	}
	pkts := make([]Packet, 200)
	n := 0
	if allocs := testing.AllocsPerRun(100, func() {
		ch := r.arm(a)
		r.push(&pkts[n])
		n++
		<-ch
	}); allocs != 0 {
		t.Errorf("%v allocations per wait, want 0", allocs)
	}
}
