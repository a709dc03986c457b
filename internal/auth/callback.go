package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// CallbackConfig says where and how an HTTP authorization callback is asked.
type CallbackConfig struct {
	URL       string            `yaml:"url"`        // http:// or https:// URL that receives a POST per request
	Timeout   time.Duration     `yaml:"timeout"`    // per call; 0 = 2s; at most 30s
	CacheTTL  time.Duration     `yaml:"cache_ttl"`  // how long an answer is reused; 0 = 10s; negative = no cache
	CacheSize int               `yaml:"cache_size"` // cached answers at most; 0 = 10000; at most 1000000
	Headers   map[string]string `yaml:"headers"`    // sent with every call, e.g. a credential for the callback service
}

// Defaults and bounds of CallbackConfig.
const (
	DefaultCallbackTimeout = 2 * time.Second
	DefaultCacheTTL        = 10 * time.Second
	DefaultCacheSize       = 10000
	maxCallbackTimeout     = 30 * time.Second
	maxCacheSize           = 1000000
	maxCallbackBody        = 4 << 10 // bytes of the answer read (and ignored)
)

// callbackBody is the JSON the callback receives.
type callbackBody struct {
	Action Action `json:"action"`
	Stream string `json:"stream"`
	Token  string `json:"token"`
	Remote string `json:"remote"` // IP address, "" when unknown
}

// Callback is an Authenticator that asks an HTTP service. It POSTs
// {"action","stream","token","remote"} as JSON and reads only the status:
//
//   - 2xx allows;
//   - 401 is ErrUnauthenticated;
//   - 429 (the service is throttling), 3xx, 5xx, a timeout or a network
//     error is ErrUnavailable: denied, and not cached;
//   - any other 4xx is ErrForbidden.
//
// Answers are cached for CacheTTL, keyed by a hash of the whole request,
// and concurrent identical requests share one call, so a burst of viewers
// with the same token costs the service one request.
type Callback struct {
	url     string
	headers http.Header
	client  *http.Client
	timeout time.Duration

	ttl    time.Duration // 0: no cache
	size   int
	now    func() time.Time
	joined func() // tests: called when a request joins a call in flight

	mu       sync.Mutex
	entries  map[[sha256.Size]byte]cached
	inflight map[[sha256.Size]byte]*flight
}

// cached is one remembered answer.
type cached struct {
	err     error
	expires time.Time
}

// flight is a call in progress that identical requests wait for.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// NewCallback returns the Authenticator for c. client is used for the calls
// (nil: a plain http.Client); redirects are never followed, so the token is
// only ever sent to the configured URL.
func NewCallback(c CallbackConfig, client *http.Client) (*Callback, error) {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("url: not an absolute http:// or https:// URL")
	}
	cb := &Callback{
		url:     c.URL,
		headers: make(http.Header, len(c.Headers)+1),
		timeout: c.Timeout,
		ttl:     c.CacheTTL,
		size:    c.CacheSize,
		now:     time.Now,
	}
	if cb.timeout == 0 {
		cb.timeout = DefaultCallbackTimeout
	}
	if cb.timeout < 0 || cb.timeout > maxCallbackTimeout {
		return nil, fmt.Errorf("timeout: %s is out of range (allowed 1ns..%s)", cb.timeout, maxCallbackTimeout)
	}
	switch {
	case cb.ttl == 0:
		cb.ttl = DefaultCacheTTL
	case cb.ttl < 0:
		cb.ttl = 0
	}
	if cb.size == 0 {
		cb.size = DefaultCacheSize
	}
	if cb.size < 0 || cb.size > maxCacheSize {
		return nil, fmt.Errorf("cache_size: %d is out of range (allowed 0..%d)", cb.size, maxCacheSize)
	}
	for k, v := range c.Headers {
		cb.headers.Set(k, v)
	}
	cb.headers.Set("Content-Type", "application/json")

	hc := http.Client{}
	if client != nil {
		hc = *client
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cb.client = &hc
	cb.entries = make(map[[sha256.Size]byte]cached)
	cb.inflight = make(map[[sha256.Size]byte]*flight)
	return cb, nil
}

// Authorize answers from the cache, from a call already in flight for the
// same request, or by calling the service.
func (cb *Callback) Authorize(ctx context.Context, r Request) error {
	if cb.ttl == 0 {
		_, err := cb.call(ctx, r)
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: request cancelled: %w", ErrUnavailable, err)
	}
	key := requestKey(r)

	cb.mu.Lock()
	if e, ok := cb.entries[key]; ok && cb.now().Before(e.expires) {
		cb.mu.Unlock()
		return e.err
	}
	if f, ok := cb.inflight[key]; ok {
		cb.mu.Unlock()
		if cb.joined != nil {
			cb.joined()
		}
		select {
		case <-f.done:
			return f.err
		case <-ctx.Done():
			return fmt.Errorf("%w: gave up waiting for the auth callback: %w", ErrUnavailable, ctx.Err())
		}
	}
	f := &flight{done: make(chan struct{})}
	cb.inflight[key] = f
	cb.mu.Unlock()

	// The call outlives this caller's cancellation (bounded by the timeout)
	// because other requests may be waiting for its answer.
	final, err := cb.call(context.WithoutCancel(ctx), r)

	cb.mu.Lock()
	delete(cb.inflight, key)
	if final {
		cb.store(key, err)
	}
	cb.mu.Unlock()
	f.err = err
	close(f.done)
	return err
}

// store remembers an answer; cb.mu is held. When the cache is full, expired
// answers are dropped, and if none had expired, one chosen at random.
func (cb *Callback) store(key [sha256.Size]byte, err error) {
	now := cb.now()
	if len(cb.entries) >= cb.size {
		for k, e := range cb.entries {
			if !now.Before(e.expires) {
				delete(cb.entries, k)
			}
		}
		for k := range cb.entries {
			if len(cb.entries) < cb.size {
				break
			}
			delete(cb.entries, k)
		}
	}
	cb.entries[key] = cached{err: err, expires: now.Add(cb.ttl)}
}

// call asks the service once. final reports whether the answer may be
// cached (the service decided, rather than failed).
func (cb *Callback) call(ctx context.Context, r Request) (final bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cb.timeout)
	defer cancel()

	body := callbackBody{Action: r.Action, Stream: r.Stream, Token: r.Token}
	if r.Remote.IsValid() {
		body.Remote = r.Remote.String()
	}
	b, err := json.Marshal(body)
	if err != nil {
		return false, fmt.Errorf("%w: cannot encode auth callback request", ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cb.url, bytes.NewReader(b))
	if err != nil {
		return false, fmt.Errorf("%w: cannot build auth callback request", ErrUnavailable)
	}
	req.Header = cb.headers.Clone()
	resp, err := cb.client.Do(req)
	if err != nil {
		// The error text names the URL, which may hold a credential:
		// only its kind goes into the reason.
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Errorf("%w: auth callback timed out after %s", ErrUnavailable, cb.timeout)
		}
		return false, fmt.Errorf("%w: auth callback unreachable", ErrUnavailable)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCallbackBody))
	_ = resp.Body.Close()

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return true, nil
	case code == http.StatusUnauthorized:
		return true, fmt.Errorf("%w: rejected by auth callback (401)", ErrUnauthenticated)
	case code == http.StatusTooManyRequests:
		return false, fmt.Errorf("%w: auth callback is throttling (429)", ErrUnavailable)
	case code >= 400 && code < 500:
		return true, fmt.Errorf("%w: rejected by auth callback (%d)", ErrForbidden, code)
	default:
		return false, fmt.Errorf("%w: auth callback answered %d", ErrUnavailable, code)
	}
}

// requestKey hashes every field of r, length-prefixed so that no two
// requests share an encoding; the token itself is never stored.
func requestKey(r Request) [sha256.Size]byte {
	var b []byte
	for _, s := range []string{string(r.Action), r.Stream, r.Token} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b, _ = r.Remote.AppendBinary(b)
	return sha256.Sum256(b)
}
