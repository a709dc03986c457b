package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

const (
	jwtSecret = "a-shared-secret-of-at-least-32-bytes!"
	pubToken  = "static-publish-token"
	readToken = "static-read-token"
	cbTimeout = 300 * time.Millisecond
	cbAllow   = "cb-allow"
	cbDeny    = "cb-deny"
	cbUnauth  = "cb-unauthenticated"
	cbSlow    = "cb-slow"
)

// mintJWT signs an HS256 token with the sluice claim.
func mintJWT(t testing.TB, secret string, exp time.Time, actions []string, streams []string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"exp":    exp.Unix(),
		"sluice": map[string]any{"actions": actions, "streams": streams},
	})
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// callbackService answers sluice's auth callback by the token it carries.
func callbackService(t *testing.T) *httptest.Server {
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Action, Stream, Token string }
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		switch req.Token {
		case cbAllow:
			w.WriteHeader(http.StatusOK)
		case cbDeny:
			w.WriteHeader(http.StatusForbidden)
		case cbSlow:
			<-r.Context().Done() // until sluice gives up
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(cb.Close)
	return cb
}

// TestAuthMatrix checks authorisation over the wire: for static tokens,
// HS256 JWTs and an HTTP callback, each kind of token against WHIP (publish)
// and WHEP (read) POSTs, with the status expected (401 with a Bearer
// challenge, 403, 503 for a callback that times out, 201). Then that a
// session created with a token can only be PATCHed and DELETEd with it.
func TestAuthMatrix(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	cb := callbackService(t)
	srv := startEdgeServer(t, func(c *config.Config) {
		c.Auth = auth.Config{Default: auth.ModeDeny, Rules: []auth.RuleConfig{
			{Streams: "static-*", Mode: auth.ModeStatic, Tokens: []auth.StaticToken{
				{Token: pubToken, Actions: []string{"publish"}},
				{Token: readToken, Actions: []string{"read"}},
			}},
			{Streams: "jwt-*", Mode: auth.ModeJWT, JWT: auth.JWTConfig{Secret: jwtSecret}},
			{Streams: "cb-*", Mode: auth.ModeCallback, Callback: auth.CallbackConfig{URL: cb.URL, Timeout: cbTimeout, CacheTTL: -1}},
		}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	hour := time.Now().Add(time.Hour)
	jwtBoth := mintJWT(t, jwtSecret, hour, []string{"publish", "read"}, []string{"jwt-*"})
	jwtRead := mintJWT(t, jwtSecret, hour, []string{"read"}, []string{"jwt-*"})
	jwtExpired := mintJWT(t, jwtSecret, time.Now().Add(-time.Hour), []string{"publish", "read"}, []string{"jwt-*"})
	jwtForged := mintJWT(t, "another-secret-of-at-least-32-bytes!!", hour, []string{"publish", "read"}, []string{"jwt-*"})
	jwtOther := mintJWT(t, jwtSecret, hour, []string{"publish", "read"}, []string{"other-*"})

	// A live publisher per mode, so that a permitted WHEP POST gets 201.
	clip := loadClip(t)
	feedCtx, stopFeeds := context.WithCancel(ctx)
	var feeds []<-chan struct{}
	defer func() {
		stopFeeds()
		for _, f := range feeds {
			<-f
		}
	}()
	for mode, tok := range map[string]string{"static": pubToken, "jwt": jwtBoth, "cb": cbAllow} {
		pub, err := client.Publish(ctx, srv.base+"/whip/"+mode+"-s", client.PublishOptions{Token: tok})
		if err != nil {
			t.Fatalf("%s publisher: %v", mode, err)
		}
		defer pub.Close()
		feeds = append(feeds, looseFeed(feedCtx, pub, clip))
	}
	whipOffer, whepOffer := rawOffer(t, true), rawOffer(t, false)

	const (
		bare    = `Bearer realm="sluice"`
		invalid = `error="invalid_token"`
	)
	type want struct {
		publish, read int
		challenge     string // in WWW-Authenticate on 401
	}
	cases := []struct {
		mode, name, token string
		want
	}{
		{"static", "no token", "", want{401, 401, bare}},
		{"static", "unknown token", "nope", want{401, 401, invalid}},
		{"static", "publish token", pubToken, want{201, 403, ""}},
		{"static", "read token", readToken, want{403, 201, ""}},
		{"jwt", "no token", "", want{401, 401, bare}},
		{"jwt", "valid", jwtBoth, want{201, 201, ""}},
		{"jwt", "read only", jwtRead, want{403, 201, ""}},
		{"jwt", "expired", jwtExpired, want{401, 401, invalid}},
		{"jwt", "wrong signature", jwtForged, want{401, 401, invalid}},
		{"jwt", "other streams", jwtOther, want{403, 403, ""}},
		{"jwt", "garbage", "not.a.jwt", want{401, 401, invalid}},
		{"cb", "allowed", cbAllow, want{201, 201, ""}},
		{"cb", "denied", cbDeny, want{403, 403, ""}},
		{"cb", "unauthenticated", cbUnauth, want{401, 401, invalid}},
		{"cb", "timeout", cbSlow, want{503, 503, ""}},
		{"none", "no rule: default deny", pubToken, want{403, 403, ""}},
	}
	for _, c := range cases {
		for _, action := range []string{"publish", "read"} {
			t.Run(c.mode+"/"+c.name+"/"+action, func(t *testing.T) {
				// WHIP on a stream of its own (the -s one has a publisher);
				// WHEP on the stream with the publisher.
				url, offer, wantStatus := srv.base+"/whip/"+c.mode+"-p", whipOffer, c.publish
				if action == "read" {
					url, offer, wantStatus = srv.base+"/whep/"+c.mode+"-s", whepOffer, c.read
				}
				h := map[string]string{"Content-Type": sdpType}
				if c.token != "" {
					h["Authorization"] = "Bearer " + c.token
				}
				start := time.Now()
				r := send(t, nil, http.MethodPost, url, h, offer)
				if r.status != wantStatus {
					t.Fatalf("status %d, want %d (%s)", r.status, wantStatus, r.body)
				}
				checkCommon(t, r)
				if r.status == http.StatusUnauthorized && !strings.Contains(r.header.Get("WWW-Authenticate"), c.challenge) {
					t.Errorf("WWW-Authenticate %q, want it to hold %q", r.header.Get("WWW-Authenticate"), c.challenge)
				}
				if c.token != "" && strings.Contains(r.body, c.token) {
					t.Errorf("the reason %q repeats the token", r.body)
				}
				if d := time.Since(start); d > cbTimeout+3*time.Second {
					t.Errorf("answered after %v", d)
				}
				if r.status == http.StatusCreated {
					// The holder's token ends the session again.
					d := send(t, nil, http.MethodDelete, srv.base+r.header.Get("Location"), map[string]string{"Authorization": "Bearer " + c.token}, "")
					if d.status != http.StatusOK {
						t.Errorf("DELETE with the session's token: %d %s", d.status, d.body)
					}
				}
			})
		}
	}

	t.Run("token in the query", func(t *testing.T) {
		r := send(t, nil, http.MethodPost, srv.base+"/whip/static-q?token="+pubToken, map[string]string{"Content-Type": sdpType}, whipOffer)
		if r.status != http.StatusCreated {
			t.Fatalf("?token=: %d %s", r.status, r.body)
		}
		// The same token, in the header this time, is the session's.
		d := send(t, nil, http.MethodDelete, srv.base+r.header.Get("Location"), map[string]string{"Authorization": "Bearer " + pubToken}, "")
		if d.status != http.StatusOK {
			t.Errorf("DELETE: %d %s", d.status, d.body)
		}
	})

	t.Run("session holder", func(t *testing.T) {
		r := send(t, nil, http.MethodPost, srv.base+"/whip/static-h", map[string]string{"Content-Type": sdpType, "Authorization": "Bearer " + pubToken}, whipOffer)
		if r.status != http.StatusCreated {
			t.Fatalf("POST: %d %s", r.status, r.body)
		}
		loc := srv.base + r.header.Get("Location")
		frag := fragment(t, whipOffer, "", "", "a=end-of-candidates\r\n")
		for _, c := range []struct {
			method, token string
			want          int
		}{
			{http.MethodPatch, "", http.StatusUnauthorized},
			{http.MethodPatch, readToken, http.StatusForbidden},
			{http.MethodPatch, "nope", http.StatusForbidden},
			{http.MethodDelete, "", http.StatusUnauthorized},
			{http.MethodDelete, readToken, http.StatusForbidden},
			{http.MethodPatch, pubToken, http.StatusNoContent},
			{http.MethodDelete, pubToken, http.StatusOK},
		} {
			h := map[string]string{"Content-Type": fragType, "If-Match": r.header.Get("ETag")}
			if c.token != "" {
				h["Authorization"] = "Bearer " + c.token
			}
			got := send(t, nil, c.method, loc, h, frag)
			if got.status != c.want {
				t.Errorf("%s with token %q: %d, want %d (%s)", c.method, c.token, got.status, c.want, got.body)
			}
			checkCommon(t, got)
		}
	})

	// The real clients send their token with every request.
	t.Run("clients", func(t *testing.T) {
		v, err := client.View(ctx, srv.base+"/whep/jwt-s", client.ViewOptions{Token: jwtRead, Trickle: true})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if err := v.RestartICE(ctx); err != nil {
			t.Errorf("ICE restart with the token: %v", err)
		}
		if got := receiveAUs(v, 5, 10*time.Second); got < 5 {
			t.Errorf("%d access units", got)
		}
		if err := v.Close(); err != nil {
			t.Errorf("DELETE with the token: %v", err)
		}
		_, err = client.View(ctx, srv.base+"/whep/jwt-s", client.ViewOptions{Token: jwtExpired})
		if client.StatusOf(err) != http.StatusUnauthorized {
			t.Errorf("view with an expired token: %v, want 401", err)
		}
	})
}
