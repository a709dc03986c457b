package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestMatrix runs every mode, built from Config, against every action, on
// a stream the credential covers and one it does not, with the good
// credential, none and a bogus one. The good credential allows publish and
// read on "cam-*".
func TestMatrix(t *testing.T) {
	k := testKeys()
	now := time.Now()
	grantSpec := func(m jwt.SigningMethod, key any, kid string) tokenSpec {
		return tokenSpec{method: m, key: key, kid: kid, exp: time.Hour,
			actions: []Action{ActionPublish, ActionRead}, streams: []string{"cam-*"}}
	}
	const staticGood = "static-token-0123456789"
	const callbackGood = "callback-token-0123456789"
	srv := newCallbackServer(t, func(b callbackBody) int {
		switch {
		case b.Token != callbackGood:
			return http.StatusUnauthorized
		case (grant{actions: []Action{ActionPublish, ActionRead}, streams: []string{"cam-*"}}).allows(b.Action, b.Stream):
			return http.StatusOK
		}
		return http.StatusForbidden
	})

	type mode struct {
		name string
		rule RuleConfig
		good string // "" for the modes that need no token
		want func(a Action, covered bool, token string) error
	}
	needsToken := func(good string) func(Action, bool, string) error {
		return func(a Action, covered bool, token string) error {
			switch {
			case token == "":
				return ErrUnauthenticated
			case token != good:
				return ErrUnauthenticated
			case (a == ActionPublish || a == ActionRead) && covered:
				return nil
			}
			return ErrForbidden
		}
	}
	modes := []mode{
		{"allow", RuleConfig{Mode: ModeAllow}, "", func(Action, bool, string) error { return nil }},
		{"deny", RuleConfig{Mode: ModeDeny}, "", func(Action, bool, string) error { return ErrForbidden }},
		{"static", RuleConfig{Mode: ModeStatic, Tokens: []StaticToken{
			{Token: "other-token-0123456789"},
			{Token: staticGood, Actions: []string{"publish", "read"}, Streams: []string{"cam-*"}},
		}}, staticGood, nil},
		{"jwt hs256", RuleConfig{Mode: ModeJWT, JWT: JWTConfig{Secret: testSecret}},
			mint(t, now, grantSpec(jwt.SigningMethodHS256, []byte(testSecret), "")), nil},
		{"jwt rs256 pem", RuleConfig{Mode: ModeJWT, JWT: JWTConfig{KeyFile: writeFile(t, "k.pem", pemPublic(t, &k.rsa1.PublicKey))}},
			mint(t, now, grantSpec(jwt.SigningMethodRS256, k.rsa1, "")), nil},
		{"jwt es256 jwks", RuleConfig{Mode: ModeJWT, JWT: JWTConfig{JWKSFile: jwksFile(t,
			jwkOf("r", &k.rsa1.PublicKey), jwkOf("e", &k.ec1.PublicKey))}},
			mint(t, now, grantSpec(jwt.SigningMethodES256, k.ec1, "e")), nil},
		{"callback", RuleConfig{Mode: ModeCallback, Callback: CallbackConfig{URL: srv.URL}}, callbackGood, nil},
	}
	for _, m := range modes {
		if m.want == nil {
			m.want = needsToken(m.good)
		}
		a, err := New(Config{Default: ModeDeny, Rules: []RuleConfig{m.rule}}, srv.Client())
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		tokens := map[string]string{"none": "", "bogus": "bogus-token"}
		if m.good != "" {
			tokens["good"] = m.good
		}
		for _, action := range actions {
			streams := []string{"cam-1", "lobby"}
			if action == ActionAPI {
				streams = append(streams, "") // server-wide
			}
			for _, stream := range streams {
				for tn, token := range tokens {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", m.name, action, stream, tn), func(t *testing.T) {
						r := Request{Action: action, Stream: stream, Token: token, Remote: netip.MustParseAddr("::1")}
						want := m.want(action, stream == "cam-1", token)
						err := a.Authorize(context.Background(), r)
						checkErr(t, err, want, "")
					})
				}
			}
		}
	}
}

func TestTokenFromRequest(t *testing.T) {
	for _, tc := range []struct {
		auth, url, want string
	}{
		{"Bearer abc", "/whip/s", "abc"},
		{"bearer abc", "/whip/s", "abc"},
		{"BEARER   abc  ", "/whip/s", "abc"},
		{"", "/whep/s?token=q1", "q1"},
		{"Bearer h1", "/whep/s?token=q1", "h1"},
		{"Basic dXNlcjpwYXNz", "/whep/s?token=q1", "q1"},
		{"Basic dXNlcjpwYXNz", "/whep/s", ""},
		{"Bearer", "/whep/s", ""},
		{"Bearer ", "/whep/s?token=q1", "q1"},
		{"", "/whep/s", ""},
	} {
		r := httptest.NewRequest(http.MethodPost, tc.url, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := TokenFromRequest(r); got != tc.want {
			t.Errorf("Authorization %q, URL %q: got %q, want %q", tc.auth, tc.url, got, tc.want)
		}
	}
}

func TestNewRequest(t *testing.T) {
	for _, tc := range []struct {
		remote string
		want   netip.Addr
	}{
		{"192.0.2.1:5000", netip.MustParseAddr("192.0.2.1")},
		{"[2001:db8::1]:5000", netip.MustParseAddr("2001:db8::1")},
		{"[::ffff:192.0.2.1]:5000", netip.MustParseAddr("192.0.2.1")},
		{"192.0.2.9", netip.MustParseAddr("192.0.2.9")},
		{"pipe", netip.Addr{}},
	} {
		hr := httptest.NewRequest(http.MethodPost, "/whip/cam?token=x", nil)
		hr.RemoteAddr = tc.remote
		r := NewRequest(hr, ActionPublish, "cam")
		want := Request{Action: ActionPublish, Stream: "cam", Token: "x", Remote: tc.want}
		if r != want {
			t.Errorf("RemoteAddr %q: got %+v, want %+v", tc.remote, r, want)
		}
	}
}

func TestChallenge(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("%w: x", ErrForbidden), ""},
		{fmt.Errorf("%w: x", ErrUnavailable), ""},
		{ErrNoToken, `Bearer realm="sluice"`},
		{fmt.Errorf("%w: token expired", ErrUnauthenticated), `Bearer realm="sluice", error="invalid_token"`},
	} {
		if got := Challenge(tc.err); got != tc.want {
			t.Errorf("Challenge(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestSentinels(t *testing.T) {
	for _, s := range []error{ErrUnauthenticated, ErrForbidden, ErrUnavailable} {
		for _, o := range []error{ErrUnauthenticated, ErrForbidden, ErrUnavailable} {
			if s != o && errors.Is(s, o) {
				t.Errorf("%v is %v", s, o)
			}
		}
	}
	if !errors.Is(ErrNoToken, ErrUnauthenticated) {
		t.Error("ErrNoToken is not ErrUnauthenticated")
	}
}
