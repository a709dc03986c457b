package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// deleteTimeout bounds the DELETE that Close sends; Close takes no context.
const deleteTimeout = 5 * time.Second

// maxErrorBody bounds how much of an error response is kept in HTTPError.
const maxErrorBody = 4096

// HTTPError is returned when the server answers an offer or a DELETE with an
// unexpected status. Body is the response body, trimmed of surrounding space.
type HTTPError struct {
	Method string
	URL    string
	Status int
	Body   string
}

// Error returns the method, URL, status and reason on one line.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Body)
}

// StatusOf returns the HTTP status carried by err, or 0 when err holds no
// HTTPError.
func StatusOf(err error) int {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.Status
	}
	return 0
}

// Auth sets the credentials of a signalling request (POST, PATCH,
// DELETE); it is called for each request, so that a signature can be
// fresh.
type Auth func(h http.Header)

// Bearer is the Auth of a token (RFC 6750), nil for none.
func Bearer(token string) Auth {
	if token == "" {
		return nil
	}
	return func(h http.Header) { h.Set("Authorization", "Bearer "+token) }
}

func (a Auth) set(req *http.Request) {
	if a != nil {
		a(req.Header)
	}
}

// Session is the server side of one WHIP or WHEP exchange: the resource
// that Offer created, which Delete ends.
type Session struct {
	hc       *http.Client
	auth     Auth
	location string // absolute URL of the session resource
	offer    string // the SDP offer as POSTed

	trickled atomic.Int64 // candidates sent by PATCH

	mu   sync.Mutex
	etag string // changes with an ICE restart
}

// Location is the session's absolute URL.
func (s *Session) Location() string { return s.location }

// ETag returns the session's current entity tag.
func (s *Session) ETag() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etag
}

func (s *Session) setETag(e string) {
	s.mu.Lock()
	s.etag = e
	s.mu.Unlock()
}

// newHTTPClient returns the client used when the caller gives none. Keep-alives
// are off so that no idle connection goroutine outlives the Publisher or Viewer.
func newHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

// Offer sends the SDP offer to a WHIP or WHEP endpoint and returns the
// session and the answer. RFC 9725 §4.2: the answer comes back with 201
// Created and the session URL in Location. Publishers, viewers and the
// cluster's edge pulls all signal through it.
func Offer(ctx context.Context, hc *http.Client, endpoint string, auth Auth, offer string) (*Session, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(offer))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	auth.set(req)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nil, "", newHTTPError(req, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, "", fmt.Errorf("read answer: %w", err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/sdp") {
		return nil, "", fmt.Errorf("answer has Content-Type %q, want application/sdp", ct)
	}
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, "", errors.New("201 without Location")
	}
	// RFC 9725 §4.2: Location may be relative to the endpoint URL: the
	// one that answered, after any 307 redirect (§4.5).
	base := resp.Request.URL
	ref, err := url.Parse(loc)
	if err != nil {
		return nil, "", fmt.Errorf("bad Location %q: %w", loc, err)
	}
	s := &Session{
		hc:       hc,
		auth:     auth,
		location: base.ResolveReference(ref).String(),
		offer:    offer,
		etag:     resp.Header.Get("ETag"),
	}
	return s, string(body), nil
}

// Delete ends the session on the server (RFC 9725 §4.2, DELETE on the
// session URL), waiting at most deleteTimeout.
func (s *Session) Delete() error {
	ctx, cancel := context.WithTimeout(context.Background(), deleteTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, s.location, nil)
	if err != nil {
		return err
	}
	s.auth.set(req)
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return newHTTPError(req, resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	return nil
}

func newHTTPError(req *http.Request, resp *http.Response) *HTTPError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	return &HTTPError{
		Method: req.Method,
		URL:    req.URL.String(),
		Status: resp.StatusCode,
		Body:   string(bytes.TrimSpace(b)),
	}
}
