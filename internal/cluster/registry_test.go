package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/cluster/redistest"
)

const testTTL = time.Second

func newTestRegistry(t *testing.T, addr string) *Registry {
	t.Helper()
	r, err := NewRegistry(addr, testTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// waitFor polls cond every 50 ms until it holds or d passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClaimRace: nodes claiming one stream at the same moment, again and
// again: each round exactly one wins, and every loser is told who did.
func TestClaimRace(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	addr := redistest.Start(t)
	const nodes, rounds = 4, 20
	regs := make([]*Registry, nodes)
	for i := range regs {
		regs[i] = newTestRegistry(t, addr)
	}
	ctx := t.Context()
	for round := range rounds {
		stream := fmt.Sprintf("race-%d", round)
		leases := make([]*Lease, nodes)
		errs := make([]error, nodes)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range nodes {
			wg.Go(func() {
				<-start
				leases[i], errs[i] = regs[i].Claim(ctx, stream, fmt.Sprintf("n%d", i), "http://n")
			})
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range nodes {
			if errs[i] == nil {
				if winner >= 0 {
					t.Fatalf("round %d: nodes %d and %d both own %q", round, winner, i, stream)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody won: %v", round, errs)
		}
		for i := range nodes {
			if i == winner {
				continue
			}
			var owned *OwnedError
			if !errors.As(errs[i], &owned) || !errors.Is(errs[i], ErrOwned) {
				t.Fatalf("round %d: loser %d got %v, want an OwnedError", round, i, errs[i])
			}
			if want := fmt.Sprintf("n%d", winner); owned.Owner.Node != want {
				t.Fatalf("round %d: loser told the owner is %s, want %s", round, owned.Owner.Node, want)
			}
		}
		leases[winner].Release(ctx)
	}
}

// TestLeaseRenewal: a held lease outlives several TTLs and keeps others
// out; released, the stream can be claimed at once.
func TestLeaseRenewal(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	addr := redistest.Start(t)
	a, b := newTestRegistry(t, addr), newTestRegistry(t, addr)
	ctx := t.Context()
	l, err := a.Claim(ctx, "cam", "a", "http://a")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * testTTL)
	select {
	case <-l.Lost():
		t.Fatal("lease lost while renewed")
	default:
	}
	if o, ok, err := b.Owner(ctx, "cam"); err != nil || !ok || o.Node != "a" || o.Lease != l.Owner().Lease {
		t.Fatalf("after 3 TTLs owner = %+v, %v, %v; want node a's lease", o, ok, err)
	}
	if _, err := b.Claim(ctx, "cam", "b", "http://b"); !errors.Is(err, ErrOwned) {
		t.Fatalf("claim of a renewed stream: %v, want ErrOwned", err)
	}
	if f, lost := a.renewFails.Load(), a.leasesLost.Load(); f != 0 || lost != 0 {
		t.Errorf("renewed lease counted %d failed renewals and %d lost leases, want 0", f, lost)
	}
	l.Release(ctx)
	lb, err := b.Claim(ctx, "cam", "b", "http://b")
	if err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	lb.Release(ctx)
}

// TestLeaseExpiry: a lease nobody renews (its node died) expires within
// its TTL; then another node claims the stream, and the old holder, if it
// renews again, learns that it lost it and cannot delete the new lease.
func TestLeaseExpiry(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	addr := redistest.Start(t)
	a, b := newTestRegistry(t, addr), newTestRegistry(t, addr)
	ctx := t.Context()
	l, err := a.Claim(ctx, "cam", "a", "http://a")
	if err != nil {
		t.Fatal(err)
	}
	l.abandon()
	start := time.Now()
	waitFor(t, "lease expiry", 3*testTTL, func() bool {
		_, ok, err := b.Owner(ctx, "cam")
		return err == nil && !ok
	})
	if d := time.Since(start); d > testTTL+500*time.Millisecond {
		t.Errorf("lease expired after %v, TTL %v", d, testTTL)
	}
	lb, err := b.Claim(ctx, "cam", "b", "http://b")
	if err != nil {
		t.Fatalf("claim after expiry: %v", err)
	}
	defer lb.Release(ctx)

	// The old holder's renewal finds b's lease: Lost, and no renewal of it.
	stale := &Lease{r: a, key: l.key, val: l.val, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go stale.renew()
	select {
	case <-stale.Lost():
	case <-time.After(3 * testTTL):
		t.Fatal("stale lease not reported lost")
	}
	if n := a.leasesLost.Load(); n != 1 {
		t.Errorf("leases lost = %d, want 1", n)
	}
	stale.Release(ctx)
	if o, ok, err := a.Owner(ctx, "cam"); err != nil || !ok || o.Node != "b" {
		t.Fatalf("after the stale release owner = %+v, %v, %v; want b", o, ok, err)
	}
}

// TestLeaseRewritten: a lease whose key vanished with nobody else taking
// it (Redis restarted empty) is written again at the next renewal, and not
// reported lost.
func TestLeaseRewritten(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	addr := redistest.Start(t)
	a := newTestRegistry(t, addr)
	ctx := t.Context()
	l, err := a.Claim(ctx, "cam", "a", "http://a")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(ctx)
	if err := a.rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lease rewritten", 2*testTTL, func() bool {
		o, ok, err := a.Owner(ctx, "cam")
		return err == nil && ok && o.Lease == l.Owner().Lease
	})
	select {
	case <-l.Lost():
		t.Fatal("lease reported lost although nobody else took it")
	default:
	}
}

// TestLeaseRenewalFails: renewals that Redis does not answer are counted
// and tried again; the lease is not reported lost for them.
func TestLeaseRenewalFails(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	_ = ln.Close() // nothing listens there now: every command fails
	r := newTestRegistry(t, dead)
	l := &Lease{r: r, key: streamKey("cam"), val: "x", lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	waitFor(t, "two failed renewals", 3*testTTL, func() bool { return r.renewFails.Load() >= 2 })
	select {
	case <-l.Lost():
		t.Fatal("lease reported lost because Redis did not answer")
	default:
	}
	l.Release(t.Context())
	if n := r.leasesLost.Load(); n != 0 {
		t.Errorf("leases lost = %d, want 0", n)
	}
}

// TestNodes: adverts are listed least loaded first and disappear when
// their node stops renewing them.
func TestNodes(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	addr := redistest.Start(t)
	r := newTestRegistry(t, addr)
	ctx := t.Context()
	for _, n := range []Node{{ID: "a", URL: "http://a", Viewers: 9, Capacity: 10}, {ID: "b", URL: "http://b", Viewers: 1, Capacity: 10}} {
		if err := r.Advertise(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := r.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "b" || nodes[1].ID != "a" {
		t.Fatalf("Nodes = %+v, %v; want b then a", nodes, err)
	}
	if nodes[1].hasRoom() != true || (Node{Viewers: 10, Capacity: 10}).hasRoom() {
		t.Fatal("hasRoom is wrong")
	}
	if err := r.Withdraw(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "advert expiry", 3*testTTL, func() bool {
		nodes, err := r.Nodes(context.Background())
		return err == nil && len(nodes) == 0
	})
}

// TestClaimAfterRestart: a node restarted with the same id takes back the
// lease its previous run left at once; another node still has to wait.
func TestClaimAfterRestart(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	addr := redistest.Start(t)
	ctx := t.Context()
	before := newTestRegistry(t, addr)
	l, err := before.Claim(ctx, "cam", "a", "http://a:1")
	if err != nil {
		t.Fatal(err)
	}
	l.abandon() // the process died

	other := newTestRegistry(t, addr)
	if _, err := other.Claim(ctx, "cam", "b", "http://b"); !errors.Is(err, ErrOwned) {
		t.Fatalf("another node's claim: %v, want ErrOwned", err)
	}
	after := newTestRegistry(t, addr)
	l2, err := after.Claim(ctx, "cam", "a", "http://a:2")
	if err != nil {
		t.Fatalf("claim by the restarted node: %v", err)
	}
	defer l2.Release(ctx)
	if o, ok, err := other.Owner(ctx, "cam"); err != nil || !ok || o.URL != "http://a:2" || o.Lease != l2.Owner().Lease {
		t.Fatalf("owner = %+v, %v, %v; want the restarted node's new lease", o, ok, err)
	}
}
