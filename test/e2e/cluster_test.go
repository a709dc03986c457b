package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/cluster"
	"github.com/sluice-media/sluice/internal/cluster/redistest"
	"github.com/sluice-media/sluice/internal/config"
)

const (
	clusterSecret   = "cluster-secret-for-the-tests"
	clusterPubToken = "cluster-publish-token"
	clusterTTL      = time.Second
)

// startClusterNode runs a sluice on loopback in the cluster on redis, with
// leases of clusterTTL and viewer auth on (tokens for publishing, deny
// otherwise), so that node-to-node pulls must use the cluster secret.
func startClusterNode(t *testing.T, redis, id string, tweak func(*config.Config)) *node {
	t.Helper()
	return startNode(t, func(cfg *config.Config) {
		cfg.Stream.ReconnectGrace = 10 * time.Second
		cfg.Cluster = config.Cluster{Redis: redis, NodeID: id, Secret: clusterSecret, LeaseTTL: clusterTTL, Linger: 500 * time.Millisecond}
		cfg.Auth = auth.Config{Default: auth.ModeDeny, Rules: []auth.RuleConfig{
			{Mode: auth.ModeStatic, Tokens: []auth.StaticToken{{Token: clusterPubToken}}},
		}}
		if tweak != nil {
			tweak(cfg)
		}
	}, nodeOptions{id: id})
}

// waitClusterMetrics scrapes the node's /metrics until every series in
// want has exactly its value and every one in atLeast at least its own.
func (n *node) waitClusterMetrics(t *testing.T, what string, want, atLeast map[string]float64) {
	t.Helper()
	waitMetrics(t, n.base, "node "+n.id+": "+what, func(s metricSamples) bool {
		for k, v := range want {
			if got, ok := s[k]; !ok || got != v {
				return false
			}
		}
		for k, v := range atLeast {
			if got, ok := s[k]; !ok || got < v {
				return false
			}
		}
		return true
	})
}

// drainQuiet empties the viewer's queues until nothing came for quiet:
// what the stream's previous publisher sent has then been received.
func drainQuiet(t *testing.T, v *client.Viewer, quiet time.Duration) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-v.AccessUnits():
		case <-v.OpusPackets():
		case <-time.After(quiet):
			return
		}
	}
	t.Fatal("viewer still receiving 10 s after its publisher stopped")
}

// firstAU returns the viewer's next access unit.
func firstAU(t *testing.T, v *client.Viewer, d time.Duration) client.AccessUnit {
	t.Helper()
	select {
	case au := <-v.AccessUnits():
		return au
	case <-v.Done():
		t.Fatal("viewer connection ended")
	case <-time.After(d):
		t.Fatalf("no access unit within %v", d)
	}
	return client.AccessUnit{}
}

// TestClusterEdgeFollowsOwner: three nodes and Redis. A publisher on A;
// viewers on B and C are served by edge pulls from A (one per node, made
// with the cluster secret although viewers need no token and auth denies
// what it does not know). A dies; the publisher comes back on B: B's
// viewer is taken over by the local publisher and C's pull follows the
// stream to B, without either viewer renegotiating. C's pull stops
// after the linger period once its viewers leave.
func TestClusterEdgeFollowsOwner(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	redis := redistest.Start(t)
	readAll := func(c *config.Config) {
		c.Auth.Rules = append([]auth.RuleConfig{{Actions: []string{"read"}, Mode: auth.ModeAllow}}, c.Auth.Rules...)
	}
	a := startClusterNode(t, redis, "a", func(c *config.Config) {}) // viewers are refused on the origin itself
	b := startClusterNode(t, redis, "b", readAll)
	c := startClusterNode(t, redis, "c", readAll)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	clip := loadClip(t)

	pubA, err := client.Publish(ctx, a.base+"/whip/live", client.PublishOptions{Token: clusterPubToken})
	if err != nil {
		t.Fatal(err)
	}
	defer pubA.Close()
	feedCtx, stopA := context.WithCancel(ctx)
	fa := newFeed(pubA, clip, 0)
	go fa.run(feedCtx)
	defer func() { stopA(); <-fa.done }()
	<-fa.sentAU(1)

	// A viewer without a token on A is refused: auth is on there.
	if _, err := client.View(ctx, a.base+"/whep/live", client.ViewOptions{}); client.StatusOf(err) != http.StatusForbidden && client.StatusOf(err) != http.StatusUnauthorized {
		t.Fatalf("tokenless viewer on the origin: %v, want 401 or 403", err)
	}
	// A forged pull credential does not get past auth either.
	r := send(t, nil, http.MethodPost, a.base+"/whep/live", map[string]string{
		"Content-Type": "application/sdp", cluster.PeerHeader: "b 1 00"}, rawOffer(t, false))
	if r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
		t.Fatalf("forged pull: %d %s, want 401 or 403", r.status, r.body)
	}

	watchC := newSeqWatch()
	vB, err := client.View(ctx, b.base+"/whep/live", client.ViewOptions{})
	if err != nil {
		t.Fatalf("viewer on edge B: %v", err)
	}
	defer vB.Close()
	vC, err := client.View(ctx, c.base+"/whep/live", client.ViewOptions{OnRTP: watchC.onRTP})
	if err != nil {
		t.Fatalf("viewer on edge C: %v", err)
	}
	defer vC.Close()
	vC2, err := client.View(ctx, c.base+"/whep/live", client.ViewOptions{CountOnly: true})
	if err != nil {
		t.Fatalf("second viewer on edge C: %v", err)
	}
	defer vC2.Close()
	for name, v := range map[string]*client.Viewer{"B": vB, "C": vC} {
		if au := firstAU(t, v, 10*time.Second); !client.IsIDR(au.NALUs) {
			t.Errorf("edge %s: first frame is not a keyframe", name)
		}
		if n := receiveAUs(v, 10, 10*time.Second); n < 10 {
			t.Fatalf("edge %s: %d of 10 frames", name, n)
		}
	}
	// A serves its publisher and one pull per edge, however many viewers
	// the edges have.
	a.waitSessions(t, 3, 5*time.Second)
	a.waitClusterMetrics(t, "origin", map[string]float64{"sluice_cluster_owned_streams": 1, "sluice_cluster_edge_pulls": 0}, nil)
	for _, n := range []*node{b, c} {
		n.waitClusterMetrics(t, "edge", map[string]float64{"sluice_cluster_owned_streams": 0, "sluice_cluster_edge_pulls": 1,
			"sluice_cluster_owner_moves_total": 0}, map[string]float64{"sluice_cluster_pulls_started_total": 1})
	}

	// A dies. Its viewers' nodes keep their viewers connected.
	stopA()
	<-fa.done
	a.close()
	_ = pubA.Close()
	killed := time.Now()
	drainQuiet(t, vB, 300*time.Millisecond)
	drainQuiet(t, vC, 300*time.Millisecond)

	// The publisher comes back on B: B may claim the stream once A's
	// lease is gone (released by its shutdown, or expired).
	var pubB *client.Publisher
	for i := 0; ; i++ {
		pubB, err = client.Publish(ctx, b.base+"/whip/live", client.PublishOptions{Token: clusterPubToken})
		if err == nil {
			break
		}
		if client.StatusOf(err) != http.StatusConflict || i == 40 {
			t.Fatalf("republish on B: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer pubB.Close()
	republished := time.Now()
	// B starts mid-clip (a P frame): viewers must wait for its keyframe.
	fb := newFeed(pubB, append(clip[10:], clip...), 0)
	feedB, stopB := context.WithCancel(ctx)
	go fb.run(feedB)
	defer func() { stopB(); <-fb.done }()

	beforeCount, _ := watchC.snapshot()
	for name, v := range map[string]*client.Viewer{"B": vB, "C": vC} {
		// The first frame from B's publisher is its first keyframe.
		if au := firstAU(t, v, 15*time.Second); !client.IsIDR(au.NALUs) {
			t.Errorf("edge %s: first frame after the move is not a keyframe", name)
		}
		if name == "C" {
			t.Logf("edge C resumed %v after the republish (%v after A died)", time.Since(republished).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
		}
		if n := receiveAUs(v, 10, 10*time.Second); n < 10 {
			t.Fatalf("edge %s after the move: %d of 10 frames", name, n)
		}
	}
	for name, v := range map[string]*client.Viewer{"B": vB, "C": vC, "C2": vC2} {
		select {
		case <-v.Done():
			t.Fatalf("viewer %s's connection ended: it would have to renegotiate", name)
		default:
		}
	}
	after, maxJump := watchC.snapshot()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if after[k] <= beforeCount[k] {
			t.Errorf("C %s: no packets after the move", k)
		}
		if maxJump[k] > 1 {
			t.Errorf("C %s: sequence numbers jumped by %d across the move", k, maxJump[k])
		}
	}
	// B: its publisher, its viewer and C's pull.
	b.waitSessions(t, 3, 5*time.Second)
	// Both edges followed the stream once: B to its own publisher, C by a
	// link to B.
	b.waitClusterMetrics(t, "new owner", map[string]float64{"sluice_cluster_owned_streams": 1, "sluice_cluster_edge_pulls": 0,
		"sluice_cluster_owner_moves_total": 1}, nil)
	c.waitClusterMetrics(t, "edge after the move", map[string]float64{"sluice_cluster_owned_streams": 0, "sluice_cluster_edge_pulls": 1,
		"sluice_cluster_owner_moves_total": 1}, map[string]float64{"sluice_cluster_pulls_started_total": 2})

	// C's viewers leave: its pull from B stops after the linger period.
	_ = vC.Close()
	_ = vC2.Close()
	b.waitSessions(t, 2, 5*time.Second)
	c.waitClusterMetrics(t, "edge without viewers", map[string]float64{"sluice_cluster_edge_pulls": 0}, nil)
}

// TestClusterOwnershipRace: two publishers of one stream on two nodes at
// the same moment: exactly one gets 201, the other 409 naming the owner.
func TestClusterOwnershipRace(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	redisAddr := redistest.Start(t)
	nodes := []*node{startClusterNode(t, redisAddr, "a", nil), startClusterNode(t, redisAddr, "b", nil)}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pubs := make([]*client.Publisher, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			<-start
			pubs[i], errs[i] = client.Publish(ctx, n.base+"/whip/race", client.PublishOptions{Token: clusterPubToken})
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i := range nodes {
		if errs[i] == nil {
			won++
			defer pubs[i].Close()
			continue
		}
		var he *client.HTTPError
		if !errors.As(errs[i], &he) || he.Status != http.StatusConflict || !strings.Contains(he.Body, "published on node") {
			t.Errorf("loser on %s: %v, want 409 naming the owner", nodes[i].id, errs[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d publishers won, want exactly 1: %v", won, errs)
	}

	// The winner's lease is taken from it behind its back (as if it had
	// been cut off from Redis past the TTL): at its next renewal the node
	// notices and closes its publisher.
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	if err := rdb.Set(ctx, "sluice:stream:race", `{"node":"elsewhere","url":"http://192.0.2.1","lease":"x"}`, time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for i := range pubs {
		if pubs[i] == nil {
			continue
		}
		select {
		case <-pubs[i].Done():
		case <-time.After(5 * clusterTTL):
			t.Fatal("publisher still connected after its node lost the stream's lease")
		}
		nodes[i].waitClusterMetrics(t, "lease lost", map[string]float64{"sluice_cluster_leases_lost_total": 1,
			"sluice_cluster_owned_streams": 0}, nil)
	}
}

// TestClusterRedirectWhenFull: nodes that hold one viewer each. The first
// viewer stays on A; the second is redirected (307) to B, which serves it
// with a pull from A; a third finds no room anywhere (503).
func TestClusterRedirectWhenFull(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	redis := redistest.Start(t)
	one := func(c *config.Config) {
		c.Cluster.Capacity = 1
		c.Auth = auth.Config{} // allow all: the redirect is the point here
	}
	a := startClusterNode(t, redis, "a", one)
	b := startClusterNode(t, redis, "b", one)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()

	pub, err := client.Publish(ctx, a.base+"/whip/full", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	done := looseFeed(ctx, pub, loadClip(t))
	defer func() { <-done }()
	defer cancel()

	v1, err := client.View(ctx, a.base+"/whep/full", client.ViewOptions{CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()

	// Without following: the 307 names B's WHEP URL of the same stream.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r := send(t, noFollow, http.MethodPost, a.base+"/whep/full?x=1", map[string]string{"Content-Type": "application/sdp"}, rawOffer(t, false))
	if r.status != http.StatusTemporaryRedirect || r.header.Get("Location") != b.base+"/whep/full?x=1" {
		t.Fatalf("viewer at a full node: %d Location %q, want 307 to %s", r.status, r.header.Get("Location"), b.base+"/whep/full?x=1")
	}
	a.waitClusterMetrics(t, "one redirect", map[string]float64{"sluice_cluster_owned_streams": 1,
		"sluice_cluster_redirects_total": 1, "sluice_cluster_full_total": 0}, nil)

	// A client that follows it is served by B.
	v2, err := client.View(ctx, a.base+"/whep/full", client.ViewOptions{})
	if err != nil {
		t.Fatalf("redirected viewer: %v", err)
	}
	defer v2.Close()
	if !strings.HasPrefix(v2.Location(), b.base+"/whep/full/") {
		t.Errorf("redirected viewer's session is %s, want one on B (%s)", v2.Location(), b.base)
	}
	if n := receiveAUs(v2, 5, 10*time.Second); n < 5 {
		t.Fatalf("redirected viewer got %d of 5 frames", n)
	}
	a.waitClusterMetrics(t, "two redirects", map[string]float64{"sluice_cluster_redirects_total": 2}, nil)
	b.waitClusterMetrics(t, "edge of the redirected viewer", map[string]float64{"sluice_cluster_owned_streams": 0,
		"sluice_cluster_edge_pulls": 1, "sluice_cluster_redirects_total": 0}, map[string]float64{"sluice_cluster_pulls_started_total": 1})

	// Both full: 503 once B's advert shows its viewer.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r = send(t, noFollow, http.MethodPost, a.base+"/whep/full", map[string]string{"Content-Type": "application/sdp"}, rawOffer(t, false))
		if r.status == http.StatusServiceUnavailable {
			break
		}
		if r.status != http.StatusTemporaryRedirect || time.Now().After(deadline) {
			t.Fatalf("viewer with every node full: %d %s, want 503", r.status, r.body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(r.body, "no node of the cluster has room") {
		t.Errorf("503 reason %q does not say the cluster is full", r.body)
	}
	a.waitClusterMetrics(t, "no room", map[string]float64{"sluice_cluster_full_total": 1}, map[string]float64{"sluice_cluster_redirects_total": 2})
}

// TestClusterPublisherMoves: the publisher leaves A (DELETE; A stays up)
// and publishes again on B. The viewer on A, fed by A's own publisher so
// far, is now fed by a pull from B; the viewer on B, fed by a pull from A
// so far, is handed to B's new local publisher. Neither renegotiates.
func TestClusterPublisherMoves(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	redisAddr := redistest.Start(t)
	open := func(c *config.Config) { c.Auth = auth.Config{} }
	a := startClusterNode(t, redisAddr, "a", open)
	b := startClusterNode(t, redisAddr, "b", open)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	clip := loadClip(t)

	pubA, err := client.Publish(ctx, a.base+"/whip/mv", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fa := newFeed(pubA, clip, 0)
	feedA, stopA := context.WithCancel(ctx)
	go fa.run(feedA)
	defer func() { stopA(); <-fa.done }()
	<-fa.sentAU(1)

	viewers := map[string]*client.Viewer{}
	for name, n := range map[string]*node{"A": a, "B": b} {
		v, err := client.View(ctx, n.base+"/whep/mv", client.ViewOptions{})
		if err != nil {
			t.Fatalf("viewer on %s: %v", name, err)
		}
		defer v.Close()
		viewers[name] = v
		if got := receiveAUs(v, 5, 10*time.Second); got < 5 {
			t.Fatalf("viewer on %s: %d of 5 frames", name, got)
		}
	}
	a.waitClusterMetrics(t, "owner", map[string]float64{"sluice_cluster_owned_streams": 1, "sluice_cluster_edge_pulls": 0}, nil)
	b.waitClusterMetrics(t, "edge", map[string]float64{"sluice_cluster_owned_streams": 0, "sluice_cluster_edge_pulls": 1},
		map[string]float64{"sluice_cluster_pulls_started_total": 1})

	stopA()
	<-fa.done
	if err := pubA.Close(); err != nil { // DELETE: A gives the stream up
		t.Fatal(err)
	}
	for _, v := range viewers {
		drainQuiet(t, v, 300*time.Millisecond)
	}
	pubB, err := client.Publish(ctx, b.base+"/whip/mv", client.PublishOptions{})
	if err != nil {
		t.Fatalf("publish on B after A gave the stream up: %v", err)
	}
	defer pubB.Close()
	fb := newFeed(pubB, clip, 0)
	feedB, stopB := context.WithCancel(ctx)
	go fb.run(feedB)
	defer func() { stopB(); <-fb.done }()

	for name, v := range viewers {
		if au := firstAU(t, v, 10*time.Second); !client.IsIDR(au.NALUs) {
			t.Errorf("viewer on %s: first frame after the move is not a keyframe", name)
		}
		if got := receiveAUs(v, 10, 10*time.Second); got < 10 {
			t.Fatalf("viewer on %s after the move: %d of 10 frames", name, got)
		}
		select {
		case <-v.Done():
			t.Fatalf("viewer on %s lost its connection", name)
		default:
		}
	}
	// B holds its publisher, its viewer and A's pull; A holds its viewer.
	b.waitSessions(t, 3, 5*time.Second)
	a.waitSessions(t, 1, 5*time.Second)
	// The roles swapped, and each node followed the stream once: A by a
	// link to B, B to its own publisher.
	a.waitClusterMetrics(t, "edge after the move", map[string]float64{"sluice_cluster_owned_streams": 0,
		"sluice_cluster_edge_pulls": 1, "sluice_cluster_owner_moves_total": 1}, map[string]float64{"sluice_cluster_pulls_started_total": 1})
	b.waitClusterMetrics(t, "owner after the move", map[string]float64{"sluice_cluster_owned_streams": 1,
		"sluice_cluster_edge_pulls": 0, "sluice_cluster_owner_moves_total": 1}, nil)
}
