// Package webhook delivers events to HTTP endpoints: JSON POSTs signed with
// HMAC-SHA256, retried with backoff, from a bounded queue per endpoint that
// drops its oldest event when full.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/events"
)

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
const SignatureHeader = "X-Sluice-Signature"

// Config is one webhook endpoint.
type Config struct {
	URL     string        `yaml:"url"`     // http(s) URL that receives POSTs
	Secret  string        `yaml:"secret"`  // HMAC-SHA256 key for SignatureHeader; empty sends no signature
	Events  []string      `yaml:"events"`  // event kinds to send; empty = all
	Timeout time.Duration `yaml:"timeout"` // per attempt; 0 = 5s
	Retries int           `yaml:"retries"` // attempts after the first; 0 = 4
	Queue   int           `yaml:"queue"`   // events waiting; 0 = 1000
}

// Hook delivers a bus's events to one endpoint.
type Hook struct {
	cfg    Config
	client *http.Client
	log    *slog.Logger
	sub    *events.Subscription

	mu     sync.Mutex
	queue  []events.Event
	signal chan struct{}

	dropped   atomic.Uint64
	delivered atomic.Uint64
	failed    atomic.Uint64

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// backoff is the wait before each retry; the last value repeats.
var backoff = []time.Duration{250 * time.Millisecond, time.Second, 4 * time.Second, 15 * time.Second}

// Start subscribes to bus and delivers until Close.
func Start(cfg Config, bus *events.Bus, client *http.Client, log *slog.Logger) *Hook {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 4
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1000
	}
	if client == nil {
		client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hook{cfg: cfg, client: client, log: log.With("webhook", cfg.URL), sub: bus.Subscribe(256),
		signal: make(chan struct{}, 1), cancel: cancel}
	h.wg.Go(h.collect)
	h.wg.Go(func() { h.deliver(ctx) })
	return h
}

// Close stops delivery; queued events are dropped.
func (h *Hook) Close() {
	h.sub.Close()
	h.cancel()
	h.wg.Wait()
}

// Dropped counts events lost to a full queue or to the bus.
func (h *Hook) Dropped() uint64 { return h.dropped.Load() + h.sub.Dropped() }

// Delivered counts events the endpoint accepted (2xx).
func (h *Hook) Delivered() uint64 { return h.delivered.Load() }

// Failed counts events given up after all retries.
func (h *Hook) Failed() uint64 { return h.failed.Load() }

// collect moves events from the bus into the bounded queue.
func (h *Hook) collect() {
	for e := range h.sub.C {
		if len(h.cfg.Events) > 0 && !slices.Contains(h.cfg.Events, string(e.Kind)) {
			continue
		}
		h.mu.Lock()
		if len(h.queue) >= h.cfg.Queue {
			h.queue = h.queue[1:]
			h.dropped.Add(1)
		}
		h.queue = append(h.queue, e)
		h.mu.Unlock()
		select {
		case h.signal <- struct{}{}:
		default:
		}
	}
}

func (h *Hook) deliver(ctx context.Context) {
	for {
		h.mu.Lock()
		var e events.Event
		ok := len(h.queue) > 0
		if ok {
			e, h.queue = h.queue[0], h.queue[1:]
		}
		h.mu.Unlock()
		if !ok {
			select {
			case <-h.signal:
				continue
			case <-ctx.Done():
				return
			}
		}
		h.send(ctx, e)
	}
}

// send posts one event, retrying on errors and non-2xx answers.
func (h *Hook) send(ctx context.Context, e events.Event) {
	body, _ := json.Marshal(e)
	for attempt := 0; ; attempt++ {
		err := h.post(ctx, body)
		if err == nil {
			h.delivered.Add(1)
			return
		}
		if attempt >= h.cfg.Retries || ctx.Err() != nil {
			h.failed.Add(1)
			h.log.Warn("webhook delivery failed", "event", string(e.Kind), "stream", e.Stream, "attempts", attempt+1, "err", err)
			return
		}
		t := time.NewTimer(backoff[min(attempt, len(backoff)-1)])
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

func (h *Hook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sluice-webhook")
	if h.cfg.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(h.cfg.Secret, body))
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Sign returns the signature header value for body.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a signature header value in constant time; receivers can
// use it (or its three lines) to authenticate sluice's POSTs.
func Verify(secret string, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}
