package sources

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// fakeCamera is a PullFunc: it refuses while down, otherwise connects and
// plays until ctx ends or it is dropped.
type fakeCamera struct {
	mu      sync.Mutex
	down    error
	drop    chan struct{} // closed to drop the connected pulls
	pulls   atomic.Int32  // attempts
	playing atomic.Int32
}

func newFakeCamera() *fakeCamera { return &fakeCamera{drop: make(chan struct{})} }

func (c *fakeCamera) pull(ctx context.Context, _ Source, connected, _ func(string)) error {
	c.pulls.Add(1)
	c.mu.Lock()
	down, drop := c.down, c.drop
	c.mu.Unlock()
	if down != nil {
		return down
	}
	connected("TCP")
	c.playing.Add(1)
	defer c.playing.Add(-1)
	select {
	case <-ctx.Done():
		return nil
	case <-drop:
		return errors.New("connection reset by camera")
	}
}

func (c *fakeCamera) set(down error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
	if down != nil {
		close(c.drop)
		c.drop = make(chan struct{})
	}
}

// waitFor polls cond (state is read, not announced) for up to d.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBackoff: a refused source is retried 1 s, then 2 s later (state
// error, retry_in growing, reconnects counted, the error kept and its
// password scrubbed); once the camera answers it is connected.
func TestBackoff(t *testing.T) {
	defer goleak.VerifyNone(t)
	cam := newFakeCamera()
	cam.set(errors.New("401 Unauthorized for rtsp://admin:s3cret@cam/x"))
	sup := New(Config{Sources: []Source{{Stream: "cam", URL: "rtsp://admin:s3cret@192.0.2.1/x"}}, Pull: cam.pull})
	defer sup.Close()

	st, _ := sup.Source("cam")
	if strings.Contains(st.URL, "s3cret") || strings.Contains(st.URL, "admin") {
		t.Errorf("state URL %q shows credentials", st.URL)
	}
	waitFor(t, "first failure", 2*time.Second, func() bool { st, _ = sup.Source("cam"); return st.State == StateError })
	if st.RetryIn != 1 || st.Reconnects != 0 {
		t.Errorf("after the first failure: retry_in %v, reconnects %d; want 1 s, 0", st.RetryIn, st.Reconnects)
	}
	if strings.Contains(st.LastError, "s3cret") || !strings.Contains(st.LastError, "401") {
		t.Errorf("last_error %q: want the 401 without the password", st.LastError)
	}
	waitFor(t, "second failure", 3*time.Second, func() bool { st, _ = sup.Source("cam"); return st.RetryIn == 2 })
	if st.Reconnects != 1 || cam.pulls.Load() != 2 {
		t.Errorf("reconnects %d, attempts %d; want 1, 2", st.Reconnects, cam.pulls.Load())
	}
	cam.set(nil)
	waitFor(t, "connected", 5*time.Second, func() bool { st, _ = sup.Source("cam"); return st.State == StateConnected })
	if st.Using != "TCP" || st.Reconnects != 2 {
		t.Errorf("connected: using %q, reconnects %d; want TCP, 2", st.Using, st.Reconnects)
	}
	// A drop is retried after 1 s again, not after the back-off reached.
	cam.set(errors.New("refused"))
	waitFor(t, "lost", 2*time.Second, func() bool { st, _ = sup.Source("cam"); return st.State == StateError })
	if st.RetryIn != 1 || !strings.Contains(st.LastError, "reset") {
		t.Errorf("after a drop: retry_in %v, last_error %q; want 1 s and the drop's reason", st.RetryIn, st.LastError)
	}
}

// TestOnDemand: no pull before Demand; a Demand starts it; readers keep
// it; it stops CloseAfter after the last one left, and a new Demand
// starts it again.
func TestOnDemand(t *testing.T) {
	defer goleak.VerifyNone(t)
	cam := newFakeCamera()
	var readers atomic.Int32
	sup := New(Config{
		Sources: []Source{{Stream: "cam", URL: "rtsp://192.0.2.1/x", OnDemand: true, CloseAfter: 300 * time.Millisecond}},
		Pull:    cam.pull,
		Readers: func(string) int { return int(readers.Load()) },
	})
	defer sup.Close()
	if sup.Demand("other") {
		t.Error("Demand of a stream that is no source's reports true")
	}
	time.Sleep(200 * time.Millisecond) // nothing may happen meanwhile
	if n := cam.pulls.Load(); n != 0 {
		t.Fatalf("%d pulls before any reader", n)
	}
	if st, _ := sup.Source("cam"); st.State != StateIdle {
		t.Errorf("state %q before any reader, want idle", st.State)
	}
	if !sup.Demand("cam") {
		t.Fatal("Demand of the source's stream reports false")
	}
	waitFor(t, "pulling", 2*time.Second, func() bool { return cam.playing.Load() == 1 })
	readers.Store(1)
	time.Sleep(600 * time.Millisecond) // twice CloseAfter: a reader keeps it
	if cam.playing.Load() != 1 {
		t.Fatal("pull stopped while read")
	}
	readers.Store(0)
	left := time.Now()
	waitFor(t, "stopped", 2*time.Second, func() bool { st, _ := sup.Source("cam"); return st.State == StateIdle })
	// Readers are counted every 100 ms here: the last count that saw
	// one may be up to that long before it left.
	if d := time.Since(left); d < 200*time.Millisecond {
		t.Errorf("stopped %v after the last reader left, well before CloseAfter (300 ms)", d)
	}
	if cam.playing.Load() != 0 {
		t.Error("idle, but the pull still plays")
	}
	sup.Demand("cam")
	waitFor(t, "pulling again", 2*time.Second, func() bool { return cam.playing.Load() == 1 })
	if n := cam.pulls.Load(); n != 2 {
		t.Errorf("%d pulls, want 2", n)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"rtsp://admin:pa55@192.0.2.10:554/Streaming/Channels/101", "rtsp://xxxxx@192.0.2.10:554/Streaming/Channels/101"},
		{"rtsp://192.0.2.10/live?channel=1&password=pa55", "rtsp://192.0.2.10/live?channel=1&password=xxxxx"},
		{"rtsp://192.0.2.10/live", "rtsp://192.0.2.10/live"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	msg := scrub("rtsp://admin:pa55word@h/x", errors.New(`Describe "rtsp://admin:pa55word@h/x": 401`))
	if strings.Contains(msg, "pa55word") {
		t.Errorf("scrub left the password: %q", msg)
	}
}

// countingCameras is a PullFunc per stream: each pull plays until ctx
// ends, counted by stream and URL.
type countingCameras struct {
	mu      sync.Mutex
	started map[string]int // attempts by stream
	playing map[string]string
}

func (c *countingCameras) pull(ctx context.Context, s Source, connected, _ func(string)) error {
	c.mu.Lock()
	c.started[s.Stream]++
	c.playing[s.Stream] = s.URL
	c.mu.Unlock()
	connected("TCP")
	<-ctx.Done()
	c.mu.Lock()
	delete(c.playing, s.Stream)
	c.mu.Unlock()
	return nil
}

func (c *countingCameras) get() (map[string]int, map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	started, playing := map[string]int{}, map[string]string{}
	for k, v := range c.started {
		started[k] = v
	}
	for k, v := range c.playing {
		playing[k] = v
	}
	return started, playing
}

// TestApply: a new list starts the new source, stops the removed one,
// restarts the changed one and leaves the unchanged one alone; Put and
// Remove do the same for one source.
func TestApply(t *testing.T) {
	defer goleak.VerifyNone(t)
	cams := &countingCameras{started: map[string]int{}, playing: map[string]string{}}
	sup := New(Config{Sources: []Source{
		{Stream: "a", URL: "rtsp://192.0.2.1/a"},
		{Stream: "b", URL: "rtsp://192.0.2.1/b"},
		{Stream: "c", URL: "rtsp://192.0.2.1/c"},
	}, Pull: cams.pull})
	defer sup.Close()
	waitFor(t, "three playing", 2*time.Second, func() bool { _, p := cams.get(); return len(p) == 3 })

	d := sup.Apply([]Source{
		{Stream: "a", URL: "rtsp://192.0.2.1/a"},                  // unchanged
		{Stream: "b", URL: "rtsp://192.0.2.1/b2"},                 // changed
		{Stream: "d", URL: "rtsp://192.0.2.1/d", OnDemand: false}, // new
	})
	want := Diff{Started: []string{"d"}, Stopped: []string{"c"}, Restarted: []string{"b"}}
	if !slices.Equal(d.Started, want.Started) || !slices.Equal(d.Stopped, want.Stopped) || !slices.Equal(d.Restarted, want.Restarted) {
		t.Errorf("diff %+v, want %+v", d, want)
	}
	if _, ok := sup.Source("c"); ok {
		t.Error("removed source c still listed")
	}
	waitFor(t, "b restarted, d started", 2*time.Second, func() bool {
		_, p := cams.get()
		return p["b"] == "rtsp://192.0.2.1/b2" && p["d"] != "" && p["c"] == "" && len(p) == 3
	})
	started, _ := cams.get()
	if started["a"] != 1 || started["b"] != 2 || started["c"] != 1 || started["d"] != 1 {
		t.Errorf("pulls started %v; want a 1 (untouched), b 2, c 1, d 1", started)
	}
	// Applying the same list again changes nothing.
	if d := sup.Apply(sup.List()); !d.Empty() {
		t.Errorf("re-applying the running list changed %+v", d)
	}

	if !sup.Put(Source{Stream: "e", URL: "rtsp://192.0.2.1/e"}) {
		t.Error("Put of a new stream reports it was not created")
	}
	if sup.Put(Source{Stream: "e", URL: "rtsp://192.0.2.1/e"}) {
		t.Error("Put of an existing stream reports it was created")
	}
	if !sup.Remove("a") || sup.Remove("a") {
		t.Error("Remove of a: want true, then false")
	}
	waitFor(t, "e playing, a stopped", 2*time.Second, func() bool { _, p := cams.get(); return p["e"] != "" && p["a"] == "" })
	started, _ = cams.get()
	if started["e"] != 1 {
		t.Errorf("e started %d times by an unchanged Put, want 1", started["e"])
	}
	if names := len(sup.States()); names != 3 {
		t.Errorf("%d sources, want 3 (b, d, e)", names)
	}
}
