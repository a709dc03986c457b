package auth

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want []string // one line per error, in order; nil = valid
	}{
		{"zero", Config{}, nil},
		{"deny", Config{Default: "deny"}, nil},
		{"bad default", Config{Default: "maybe"}, []string{`auth.default: "maybe" is not allowed (allowed: allow, deny)`}},
		{"all modes", Config{Rules: []RuleConfig{
			{Streams: "cam-*", Actions: []string{"publish"}, Mode: ModeStatic, Tokens: []StaticToken{{Token: "t"}}},
			{Actions: []string{"read"}, Mode: ModeAllow},
			{Actions: []string{"api"}, Mode: ModeJWT, JWT: JWTConfig{Secret: testSecret, Leeway: time.Minute}},
			{Streams: "priv-*", Mode: ModeCallback, Callback: CallbackConfig{URL: "https://auth.example/cb", CacheTTL: -1}},
			{Mode: ModeDeny},
		}}, nil},
		{"rule fields", Config{Rules: []RuleConfig{
			{Streams: "[", Actions: []string{"read", "write"}, Mode: "open"},
		}}, []string{
			`auth.rules[0].streams: "[" is not a valid pattern (path.Match syntax: * ? [a-z] \)`,
			`auth.rules[0].actions[1]: "write" is not allowed (allowed: publish, read, api)`,
			`auth.rules[0].mode: "open" is not allowed (allowed: allow, deny, static, jwt, callback)`,
		}},
		{"no mode", Config{Rules: []RuleConfig{{}}}, []string{
			`auth.rules[0].mode: missing (allowed: allow, deny, static, jwt, callback)`,
		}},
		{"static", Config{Rules: []RuleConfig{
			{Mode: ModeStatic, Streams: "a"},
			{Mode: ModeStatic, Streams: "b", Tokens: []StaticToken{
				{Token: ""}, {Token: "x", Actions: []string{"all"}}, {Token: "x", Streams: []string{""}},
			}},
		}}, []string{
			`auth.rules[0].tokens: empty (mode static needs at least one token)`,
			`auth.rules[1].tokens[0].token: empty`,
			`auth.rules[1].tokens[1].actions[0]: "all" is not allowed (allowed: publish, read, api)`,
			`auth.rules[1].tokens[2].token: same as tokens[1].token`,
			`auth.rules[1].tokens[2].streams[0]: empty pattern (use "*" for any stream)`,
		}},
		{"jwt", Config{Rules: []RuleConfig{
			{Streams: "a", Mode: ModeJWT, JWT: JWTConfig{Issuer: "idp"}},
			{Streams: "b", Mode: ModeJWT, JWT: JWTConfig{Secret: "short-secret", Leeway: time.Hour}},
		}}, []string{
			`auth.rules[0].jwt: no key (mode jwt needs secret for HS256, or key_file or jwks_file for RS256/ES256)`,
			`auth.rules[1].jwt.secret: 12 bytes is too short for HS256 (at least 32)`,
			`auth.rules[1].jwt.leeway: 1h0m0s is out of range (allowed 0s..5m0s)`,
		}},
		{"callback", Config{Rules: []RuleConfig{
			{Streams: "a", Mode: ModeCallback},
			{Streams: "b", Mode: ModeCallback, Callback: CallbackConfig{URL: "ftp://user:pw@host/", Timeout: -time.Second, CacheSize: -1}},
		}}, []string{
			`auth.rules[0].callback.url: empty (mode callback needs a URL)`,
			`auth.rules[1].callback.url: not an absolute http:// or https:// URL`,
			`auth.rules[1].callback.timeout: -1s is out of range (allowed 0s..30s)`,
			`auth.rules[1].callback.cache_size: -1 is out of range (allowed 0..1000000; 0 = 10000)`,
		}},
		{"settings of another mode", Config{Rules: []RuleConfig{
			{Mode: ModeAllow, Tokens: []StaticToken{{Token: "t"}}, JWT: JWTConfig{Secret: testSecret},
				Callback: CallbackConfig{URL: "http://x"}},
		}}, []string{
			`auth.rules[0].tokens: set, but only mode static uses it (mode is "allow")`,
			`auth.rules[0].jwt: set, but only mode jwt uses it (mode is "allow")`,
			`auth.rules[0].callback: set, but only mode callback uses it (mode is "allow")`,
		}},
		{"shadowed rules", Config{Rules: []RuleConfig{
			{Actions: []string{"read"}, Mode: ModeAllow},
			{Streams: "*", Actions: []string{"read"}, Mode: ModeDeny},
			{Streams: "cam-*", Mode: ModeDeny}, // specific patterns are not checked
			{Actions: []string{"publish"}, Mode: ModeDeny},
			{Mode: ModeAllow}, // api is still open

			{Actions: []string{"api"}, Mode: ModeAllow},
			{Streams: "cam-*", Actions: []string{"read"}, Mode: ModeDeny},
		}}, []string{
			`auth.rules[1]: never used: rules[0] and earlier cover all its requests`,
			`auth.rules[5]: never used: rules[4] and earlier cover all its requests`,
			`auth.rules[6]: never used: rules[0] and earlier cover all its requests`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			if err != nil && strings.Contains(err.Error(), "short-secret") || err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("error %q holds a secret", err)
			}
		})
	}
}

func TestNew(t *testing.T) {
	a, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Authorize(context.Background(), Request{Action: ActionPublish, Stream: "x"}); err != nil {
		t.Errorf("zero config denies: %v", err)
	}
	a, err = New(Config{Default: "deny"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Authorize(context.Background(), Request{Action: ActionPublish, Stream: "x"}); !errors.Is(err, ErrForbidden) {
		t.Errorf("default deny: got %v", err)
	}

	if _, err := New(Config{Default: "maybe"}, nil); err == nil {
		t.Error("invalid config accepted")
	}
	missing := t.TempDir() + "/missing.pem"
	_, err = New(Config{Rules: []RuleConfig{{Mode: ModeAllow, Actions: []string{"read"}},
		{Mode: ModeJWT, JWT: JWTConfig{KeyFile: missing}}}}, nil)
	if want := "auth.rules[1].jwt.key_file: open " + missing; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("got %v, want an error starting %q", err, want)
	}
	bad := writeFile(t, "bad.json", []byte(`{"keys":[]}`))
	_, err = New(Config{Rules: []RuleConfig{{Mode: ModeJWT, JWT: JWTConfig{JWKSFile: bad}}}}, nil)
	if want := "auth.rules[0].jwt.jwks_file: " + bad + ": no keys"; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
}

// TestConfigYAML checks the documented shape decodes with the project's
// YAML library, durations included.
func TestConfigYAML(t *testing.T) {
	const doc = `
default: deny
rules:
  - streams: "cam-*"
    actions: [publish]
    mode: static
    tokens:
      - token: "a-long-random-camera-token"
        streams: ["cam-*"]
  - actions: [read]
    mode: allow
  - actions: [api]
    mode: jwt
    jwt:
      secret: "0123456789abcdef0123456789abcdef"
      leeway: 10s
  - streams: "private-*"
    mode: callback
    callback:
      url: https://auth.example.com/sluice
      timeout: 1500ms
      cache_ttl: 5s
      cache_size: 100
      headers: {X-Api-Key: k}
`
	var c Config
	if err := yaml.UnmarshalWithOptions([]byte(doc), &c, yaml.Strict()); err != nil {
		t.Fatal(err)
	}
	want := Config{Default: "deny", Rules: []RuleConfig{
		{Streams: "cam-*", Actions: []string{"publish"}, Mode: "static",
			Tokens: []StaticToken{{Token: "a-long-random-camera-token", Streams: []string{"cam-*"}}}},
		{Actions: []string{"read"}, Mode: "allow"},
		{Actions: []string{"api"}, Mode: "jwt", JWT: JWTConfig{Secret: testSecret, Leeway: 10 * time.Second}},
		{Streams: "private-*", Mode: "callback", Callback: CallbackConfig{URL: "https://auth.example.com/sluice",
			Timeout: 1500 * time.Millisecond, CacheTTL: 5 * time.Second, CacheSize: 100, Headers: map[string]string{"X-Api-Key": "k"}}},
	}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(c, nil); err != nil {
		t.Fatal(err)
	}
}
