package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// callbackServer is an httptest server that answers status for every call
// and records what it received.
type callbackServer struct {
	*httptest.Server
	calls  atomic.Int32
	mu     sync.Mutex
	last   callbackBody
	header http.Header
}

func newCallbackServer(t *testing.T, answer func(b callbackBody) int) *callbackServer {
	t.Helper()
	s := &callbackServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		var b callbackBody
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.last, s.header = b, r.Header.Clone()
		s.mu.Unlock()
		w.WriteHeader(answer(b))
	}))
	t.Cleanup(s.Close)
	return s
}

func newTestCallback(t *testing.T, c CallbackConfig, srv *httptest.Server) *Callback {
	t.Helper()
	if c.URL == "" {
		c.URL = srv.URL + "/auth"
	}
	cb, err := NewCallback(c, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

func TestCallbackStatus(t *testing.T) {
	for _, tc := range []struct {
		status int
		want   error
		reason string
	}{
		{200, nil, ""},
		{204, nil, ""},
		{401, ErrUnauthenticated, "rejected by auth callback (401)"},
		{403, ErrForbidden, "rejected by auth callback (403)"},
		{404, ErrForbidden, "(404)"},
		{429, ErrUnavailable, "throttling"},
		{500, ErrUnavailable, "answered 500"},
		{503, ErrUnavailable, "answered 503"},
		{302, ErrUnavailable, "answered 302"}, // redirects are not followed
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			srv := newCallbackServer(t, func(callbackBody) int { return tc.status })
			cb := newTestCallback(t, CallbackConfig{CacheTTL: -1}, srv.Server)
			err := cb.Authorize(context.Background(), Request{Action: ActionRead, Stream: "s", Token: "tok-123"})
			checkErr(t, err, tc.want, tc.reason)
			if err != nil && strings.Contains(err.Error(), "tok-123") {
				t.Errorf("reason %q holds the token", err)
			}
		})
	}
}

func TestCallbackRequest(t *testing.T) {
	srv := newCallbackServer(t, func(callbackBody) int { return 200 })
	cb := newTestCallback(t, CallbackConfig{Headers: map[string]string{"X-Api-Key": "k1"}}, srv.Server)
	r := Request{Action: ActionPublish, Stream: "cam-1", Token: "t", Remote: netip.MustParseAddr("192.0.2.7")}
	if err := cb.Authorize(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	want := callbackBody{Action: ActionPublish, Stream: "cam-1", Token: "t", Remote: "192.0.2.7"}
	if srv.last != want {
		t.Errorf("callback got %+v, want %+v", srv.last, want)
	}
	if got := srv.header.Get("X-Api-Key"); got != "k1" {
		t.Errorf("X-Api-Key %q, want k1", got)
	}
}

func TestCallbackTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // longer than the callback's timeout, but bounded
		case <-r.Context().Done():
		case <-release:
		case <-time.After(10 * time.Second):
		}
	}))
	defer srv.Close()
	defer close(release)
	cb := newTestCallback(t, CallbackConfig{Timeout: 50 * time.Millisecond}, srv)
	err := cb.Authorize(context.Background(), Request{Action: ActionRead, Stream: "s", Token: "t"})
	checkErr(t, err, ErrUnavailable, "timed out after 50ms")
	if len(cb.entries) != 0 {
		t.Error("a timeout was cached")
	}
}

func TestCallbackUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/secret-path?key=hunter2"
	srv.Close()
	cb, err := NewCallback(CallbackConfig{URL: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cb.Authorize(context.Background(), Request{Action: ActionRead, Stream: "s", Token: "t"})
	checkErr(t, err, ErrUnavailable, "unreachable")
	if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), srv.URL) {
		t.Errorf("reason %q names the callback URL", err)
	}
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestCallbackCache(t *testing.T) {
	status := atomic.Int32{}
	status.Store(200)
	srv := newCallbackServer(t, func(callbackBody) int { return int(status.Load()) })
	cb := newTestCallback(t, CallbackConfig{}, srv.Server)
	clock := &fakeClock{now: fixedNow}
	cb.now = clock.Now
	ctx := context.Background()
	r := Request{Action: ActionRead, Stream: "s", Token: "t", Remote: netip.MustParseAddr("192.0.2.1")}
	steps := []struct {
		name    string
		r       Request
		advance time.Duration
		status  int
		want    error
		calls   int32 // total after the step
	}{
		{"first call", r, 0, 200, nil, 1},
		{"cache hit", r, 0, 200, nil, 1},
		{"still cached though the answer changed", r, 9 * time.Second, 403, nil, 1},
		{"other token", Request{Action: ActionRead, Stream: "s", Token: "u", Remote: r.Remote}, 0, 403, ErrForbidden, 2},
		{"other remote", Request{Action: ActionRead, Stream: "s", Token: "t", Remote: netip.MustParseAddr("192.0.2.2")}, 0, 403, ErrForbidden, 3},
		{"other action", Request{Action: ActionPublish, Stream: "s", Token: "t", Remote: r.Remote}, 0, 403, ErrForbidden, 4},
		{"expired", r, 2 * time.Second, 403, ErrForbidden, 5},
		{"denial cached", r, 0, 200, ErrForbidden, 5},
		{"5xx not cached", Request{Action: ActionRead, Stream: "x"}, 0, 500, ErrUnavailable, 6},
		{"5xx retried", Request{Action: ActionRead, Stream: "x"}, 0, 200, nil, 7},
	}
	for _, s := range steps {
		clock.Add(s.advance)
		status.Store(int32(s.status))
		err := cb.Authorize(ctx, s.r)
		if !errors.Is(err, s.want) && !(s.want == nil && err == nil) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.want)
		}
		if got := srv.calls.Load(); got != s.calls {
			t.Fatalf("%s: %d calls, want %d", s.name, got, s.calls)
		}
	}
}

func TestCallbackCacheBound(t *testing.T) {
	srv := newCallbackServer(t, func(callbackBody) int { return 200 })
	cb := newTestCallback(t, CallbackConfig{CacheSize: 3}, srv.Server)
	for i := range 10 {
		r := Request{Action: ActionRead, Stream: "s", Token: strings.Repeat("t", i+1)}
		if err := cb.Authorize(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if n := len(cb.entries); n > 3 {
			t.Fatalf("%d cached answers, bound is 3", n)
		}
		if _, ok := cb.entries[requestKey(r)]; !ok {
			t.Fatal("newest answer not cached")
		}
	}
}

// TestCallbackBurst checks that identical requests arriving while a call is
// in flight wait for it instead of calling again.
func TestCallbackBurst(t *testing.T) {
	const viewers = 20
	arrived := make(chan struct{}, viewers)
	release := make(chan struct{})
	srv := newCallbackServer(t, func(callbackBody) int {
		<-release
		return 200
	})
	cb := newTestCallback(t, CallbackConfig{Timeout: 10 * time.Second}, srv.Server)
	cb.joined = func() { arrived <- struct{}{} }

	r := Request{Action: ActionRead, Stream: "s", Token: "t"}
	errs := make(chan error, viewers)
	for range viewers {
		go func() { errs <- cb.Authorize(context.Background(), r) }()
	}
	for range viewers - 1 { // all but the caller that makes the call
		<-arrived
	}
	close(release)
	for range viewers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("%d calls for one burst, want 1", n)
	}
}

func TestCallbackWaiterCancelled(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := newCallbackServer(t, func(callbackBody) int {
		started <- struct{}{}
		<-release
		return 200
	})
	cb := newTestCallback(t, CallbackConfig{Timeout: 10 * time.Second}, srv.Server)
	joined := make(chan struct{}, 1)
	cb.joined = func() { joined <- struct{}{} }
	r := Request{Action: ActionRead, Stream: "s", Token: "t"}

	leader := make(chan error, 1)
	go func() { leader <- cb.Authorize(context.Background(), r) }()
	<-started // the leader's call has reached the server
	ctx, cancel := context.WithCancel(context.Background())
	waiter := make(chan error, 1)
	go func() { waiter <- cb.Authorize(ctx, r) }()
	<-joined
	cancel()
	if err := <-waiter; !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter got %v", err)
	}
	close(release)
	if err := <-leader; err != nil {
		t.Fatal(err)
	}
}

// TestCallbackNoRedirect checks that the token is never sent on to where a
// redirect points.
func TestCallbackNoRedirect(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/elsewhere" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}
	}))
	defer srv.Close()
	cb := newTestCallback(t, CallbackConfig{}, srv)
	err := cb.Authorize(context.Background(), Request{Action: ActionRead, Stream: "s", Token: "t"})
	checkErr(t, err, ErrUnavailable, "answered 307")
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d calls; the redirect was followed", n)
	}
}

func TestNewCallbackErrors(t *testing.T) {
	for _, tc := range []struct {
		c    CallbackConfig
		want string
	}{
		{CallbackConfig{}, "url"},
		{CallbackConfig{URL: "ftp://x"}, "url"},
		{CallbackConfig{URL: "/relative"}, "url"},
		{CallbackConfig{URL: "http://x", Timeout: time.Hour}, "timeout"},
		{CallbackConfig{URL: "http://x", CacheSize: -1}, "cache_size"},
	} {
		if _, err := NewCallback(tc.c, nil); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want an error starting %q", tc.c, err, tc.want)
		}
	}
}
