package webhook

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/events"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestDeliveryOrderSignatureAndRetry: the endpoint fails the first attempt
// of every event with 500; each event still arrives, signed, in order.
func TestDeliveryOrderSignatureAndRetry(t *testing.T) {
	var mu sync.Mutex
	var got []events.Event
	attempts := map[events.Kind]int{}
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !Verify("k", body, r.Header.Get(SignatureHeader)) {
			t.Errorf("bad signature %q", r.Header.Get(SignatureHeader))
		}
		var e events.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("body %q: %v", body, err)
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[e.Kind]++
		if attempts[e.Kind] == 1 {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		got = append(got, e)
		if len(got) == 3 {
			close(done)
		}
	}))
	defer srv.Close()

	bus := events.NewBus()
	h := Start(Config{URL: srv.URL, Secret: "k", Events: []string{"stream.published", "viewer.joined", "stream.unpublished"}}, bus, nil, discard())
	defer h.Close()
	for _, k := range []events.Kind{events.StreamPublished, events.ViewerJoined, events.SessionFailed, events.StreamUnpublished} {
		bus.Publish(events.Event{Kind: k, Stream: "cam"})
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("events not delivered")
	}
	mu.Lock()
	want := []events.Kind{events.StreamPublished, events.ViewerJoined, events.StreamUnpublished}
	for i, k := range want {
		if got[i].Kind != k || got[i].Stream != "cam" {
			t.Fatalf("event %d = %+v, want %s (session.failed filtered out)", i, got[i], k)
		}
	}
	mu.Unlock()
	for deadline := time.Now().Add(5 * time.Second); h.Delivered() < 3 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the last response may still be on its way
	}
	if h.Delivered() != 3 || h.Failed() != 0 {
		t.Fatalf("delivered = %d, failed = %d", h.Delivered(), h.Failed())
	}
}

// TestQueueDropsOldest: with the endpoint stuck, a full queue drops its
// oldest events and counts them; Close returns promptly.
func TestQueueDropsOldest(t *testing.T) {
	release := make(chan struct{})
	inFlight := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case inFlight <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	bus := events.NewBus()
	h := Start(Config{URL: srv.URL, Queue: 2, Timeout: 10 * time.Second}, bus, nil, discard())
	bus.Publish(events.Event{Kind: events.ViewerJoined})
	<-inFlight
	for range 9 {
		bus.Publish(events.Event{Kind: events.ViewerJoined})
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.Dropped() < 7 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a counter: no event to wait on
	}
	if d := h.Dropped(); d != 7 { // 1 in flight + 2 queued of 10
		t.Fatalf("dropped = %d, want 7", d)
	}
	start := time.Now()
	h.Close()
	if time.Since(start) > 3*time.Second {
		t.Fatal("Close waited for the stuck endpoint")
	}
}
