package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// fixedNow is the clock of the JWT tests.
var fixedNow = time.Unix(1_800_000_000, 0)

func TestJWT(t *testing.T) {
	k := testKeys()
	clock := func() time.Time { return fixedNow }
	build := func(c JWTConfig) *JWT {
		j, err := newJWT(c, clock)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	hs := build(JWTConfig{Secret: testSecret})
	rsPEM := pemPublic(t, &k.rsa1.PublicKey)
	rs := build(JWTConfig{KeyFile: writeFile(t, "rs.pem", rsPEM)})
	es := build(JWTConfig{KeyFile: writeFile(t, "es.pem", pemPublic(t, &k.ec1.PublicKey))})
	set := build(JWTConfig{JWKSFile: jwksFile(t,
		jwkOf("a", &k.rsa1.PublicKey), jwkOf("b", &k.rsa2.PublicKey), jwkOf("e", &k.ec1.PublicKey))})
	issAud := build(JWTConfig{Secret: testSecret, Issuer: "idp", Audience: "sluice"})

	grant := func(s tokenSpec) tokenSpec {
		s.actions, s.streams = []Action{ActionPublish, ActionRead}, []string{"cam-*"}
		if s.exp == 0 {
			s.exp = time.Hour
		}
		return s
	}
	hsSpec := func(s tokenSpec) tokenSpec {
		s.method, s.key = jwt.SigningMethodHS256, []byte(testSecret)
		return grant(s)
	}
	tok := func(s tokenSpec) string { return mint(t, fixedNow, s) }
	// A header naming an algorithm the library does not know.
	unknownAlg := b64u([]byte(`{"alg":"HS999","typ":"JWT"}`)) + "." + b64u([]byte(`{"exp":1900000000}`)) + ".c2ln"

	for _, tc := range []struct {
		name   string
		auth   *JWT
		token  string
		action Action
		stream string
		want   error  // nil, ErrUnauthenticated or ErrForbidden
		reason string // substring of the error
	}{
		{"hs256 publish", hs, tok(hsSpec(tokenSpec{})), ActionPublish, "cam-1", nil, ""},
		{"hs256 read", hs, tok(hsSpec(tokenSpec{})), ActionRead, "cam-1", nil, ""},
		{"hs256 api not granted", hs, tok(hsSpec(tokenSpec{})), ActionAPI, "", ErrForbidden, "does not allow api"},
		{"hs256 other stream", hs, tok(hsSpec(tokenSpec{})), ActionPublish, "lobby", ErrForbidden, `on stream "lobby"`},
		{"hs256 api granted, server-wide", hs, tok(tokenSpec{method: jwt.SigningMethodHS256, key: []byte(testSecret),
			actions: []Action{ActionAPI}, streams: []string{"*"}, exp: time.Hour}), ActionAPI, "", nil, ""},
		{"expired", hs, tok(hsSpec(tokenSpec{exp: -time.Minute})), ActionPublish, "cam-1", ErrUnauthenticated, "token expired"},
		{"expired within leeway", hs, tok(hsSpec(tokenSpec{exp: -10 * time.Second})), ActionPublish, "cam-1", nil, ""},
		{"not yet valid", hs, tok(hsSpec(tokenSpec{nbf: time.Minute})), ActionPublish, "cam-1", ErrUnauthenticated, "not valid yet"},
		{"nbf within leeway", hs, tok(hsSpec(tokenSpec{nbf: 10 * time.Second})), ActionPublish, "cam-1", nil, ""},
		{"no exp", hs, tok(tokenSpec{method: jwt.SigningMethodHS256, key: []byte(testSecret),
			actions: []Action{ActionPublish}, streams: []string{"*"}}), ActionPublish, "cam-1", ErrUnauthenticated, "no exp"},
		{"wrong secret", hs, tok(tokenSpec{method: jwt.SigningMethodHS256, key: []byte(strings.Repeat("x", 32)),
			actions: []Action{ActionPublish}, streams: []string{"*"}, exp: time.Hour}), ActionPublish, "cam-1", ErrUnauthenticated, "invalid signature"},
		{"no sluice claim", hs, tok(tokenSpec{method: jwt.SigningMethodHS256, key: []byte(testSecret), noClaim: true, exp: time.Hour}),
			ActionRead, "cam-1", ErrForbidden, "no sluice claim"},
		{"empty claim allows nothing", hs, tok(tokenSpec{method: jwt.SigningMethodHS256, key: []byte(testSecret), exp: time.Hour}),
			ActionRead, "cam-1", ErrForbidden, "does not allow"},
		{"no token", hs, "", ActionRead, "cam-1", ErrNoToken, "no token"},
		{"malformed", hs, "not.a.jwt", ActionRead, "cam-1", ErrUnauthenticated, "malformed token"},
		{"too long", hs, strings.Repeat("a", maxTokenBytes+1), ActionRead, "cam-1", ErrUnauthenticated, "longer than"},
		{"unknown alg", hs, unknownAlg, ActionRead, "cam-1", ErrUnauthenticated, "unsupported algorithm"},
		{"rs256 against hs key", hs, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa1})),
			ActionRead, "cam-1", ErrUnauthenticated, "algorithm RS256 not allowed"},

		{"rs256 pem", rs, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa1})), ActionPublish, "cam-9", nil, ""},
		{"rs256 pem other key", rs, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa2})),
			ActionPublish, "cam-9", ErrUnauthenticated, "invalid signature"},
		// The classic confusion: HMAC keyed with the RSA public key's PEM.
		{"hs256 signed with the public key", rs, tok(grant(tokenSpec{method: jwt.SigningMethodHS256, key: rsPEM})),
			ActionPublish, "cam-9", ErrUnauthenticated, "algorithm HS256 not allowed"},
		{"alg none", rs, tok(grant(tokenSpec{method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType})),
			ActionPublish, "cam-9", ErrUnauthenticated, "algorithm none not allowed"},
		{"ps256 not pinned", rs, tok(grant(tokenSpec{method: jwt.SigningMethodPS256, key: k.rsa1})),
			ActionPublish, "cam-9", ErrUnauthenticated, "algorithm PS256 not allowed"},

		{"es256 pem", es, tok(grant(tokenSpec{method: jwt.SigningMethodES256, key: k.ec1})), ActionRead, "cam-1", nil, ""},
		{"es256 pem other key", es, tok(grant(tokenSpec{method: jwt.SigningMethodES256, key: k.ec2})),
			ActionRead, "cam-1", ErrUnauthenticated, "invalid signature"},

		{"jwks kid a", set, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa1, kid: "a"})), ActionRead, "cam-1", nil, ""},
		{"jwks kid b", set, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa2, kid: "b"})), ActionRead, "cam-1", nil, ""},
		{"jwks kid names the other key", set, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa1, kid: "b"})),
			ActionRead, "cam-1", ErrUnauthenticated, "invalid signature"},
		{"jwks unknown kid", set, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa1, kid: "zzz"})),
			ActionRead, "cam-1", ErrUnauthenticated, "unknown key id"},
		{"jwks no kid tries each key", set, tok(grant(tokenSpec{method: jwt.SigningMethodRS256, key: k.rsa2})), ActionRead, "cam-1", nil, ""},
		{"jwks es256 kid e", set, tok(grant(tokenSpec{method: jwt.SigningMethodES256, key: k.ec1, kid: "e"})), ActionRead, "cam-1", nil, ""},
		{"jwks es256 with an rsa kid", set, tok(grant(tokenSpec{method: jwt.SigningMethodES256, key: k.ec1, kid: "a"})),
			ActionRead, "cam-1", ErrUnauthenticated, "unknown key id"},

		{"issuer and audience", issAud, tok(hsSpec(tokenSpec{iss: "idp", aud: "sluice"})), ActionRead, "cam-1", nil, ""},
		{"wrong issuer", issAud, tok(hsSpec(tokenSpec{iss: "other", aud: "sluice"})), ActionRead, "cam-1", ErrUnauthenticated, "wrong issuer"},
		{"wrong audience", issAud, tok(hsSpec(tokenSpec{iss: "idp", aud: "other"})), ActionRead, "cam-1", ErrUnauthenticated, "wrong audience"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.auth.Authorize(context.Background(), Request{Action: tc.action, Stream: tc.stream, Token: tc.token})
			checkErr(t, err, tc.want, tc.reason)
			if err != nil && tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("reason %q holds the token", err)
			}
			if err != nil && strings.Contains(err.Error(), testSecret) {
				t.Errorf("reason %q holds the secret", err)
			}
		})
	}
}

// checkErr fails unless err is want (nil for allow) and its text holds
// reason.
func checkErr(t *testing.T, err, want error, reason string) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("denied: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("got %v, want %v", err, want)
	case err != nil && !strings.Contains(err.Error(), reason):
		t.Fatalf("reason %q does not contain %q", err, reason)
	case err != nil && strings.Contains(err.Error(), "\n"):
		t.Fatalf("reason %q is not one line", err)
	}
}

func TestNewJWTErrors(t *testing.T) {
	k := testKeys()
	for _, tc := range []struct {
		name string
		c    func(t *testing.T) JWTConfig
		want string
	}{
		{"no key", func(*testing.T) JWTConfig { return JWTConfig{} }, "no key"},
		{"short secret", func(*testing.T) JWTConfig { return JWTConfig{Secret: "short"} }, "secret: 5 bytes is too short"},
		{"missing key file", func(t *testing.T) JWTConfig {
			return JWTConfig{KeyFile: t.TempDir() + "/missing.pem"}
		}, "key_file: open"},
		{"bad jwks", func(t *testing.T) JWTConfig {
			return JWTConfig{JWKSFile: writeFile(t, "j.json", []byte("{"))}
		}, "jwks_file:"},
		{"leeway", func(*testing.T) JWTConfig { return JWTConfig{Secret: testSecret, Leeway: time.Hour} }, "leeway"},
		{"private key", func(t *testing.T) JWTConfig {
			return JWTConfig{KeyFile: writeFile(t, "p.pem", pemPrivate(t, k.ec1))}
		}, "private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewJWT(tc.c(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// FuzzJWT feeds arbitrary tokens to HS256, RS256 and ES256 verifiers: none
// may panic, and every reason must be one line without the token.
func FuzzJWT(f *testing.F) {
	k := testKeys()
	grant := tokenSpec{actions: []Action{ActionRead}, streams: []string{"*"}, exp: time.Hour}
	for _, s := range []tokenSpec{
		{method: jwt.SigningMethodHS256, key: []byte(testSecret)},
		{method: jwt.SigningMethodRS256, key: k.rsa1, kid: "a"},
		{method: jwt.SigningMethodES256, key: k.ec1, kid: "e"},
		{method: jwt.SigningMethodNone, key: jwt.UnsafeAllowNoneSignatureType},
	} {
		s.actions, s.streams, s.exp = grant.actions, grant.streams, grant.exp
		f.Add(mint(f, fixedNow, s))
	}
	f.Add("")
	f.Add("a.b.c")
	clock := func() time.Time { return fixedNow }
	hs, err := newJWT(JWTConfig{Secret: testSecret}, clock)
	if err != nil {
		f.Fatal(err)
	}
	set, err := newJWT(JWTConfig{JWKSFile: jwksFile(f, jwkOf("a", &k.rsa1.PublicKey), jwkOf("e", &k.ec1.PublicKey))}, clock)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, a := range []*JWT{hs, set} {
			err := a.Authorize(context.Background(), Request{Action: ActionRead, Stream: "s", Token: token})
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) {
				t.Fatalf("unexpected error %v", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || len(token) > 8 && strings.Contains(msg, token) {
				t.Fatalf("bad reason %q", msg)
			}
		}
	})
}
