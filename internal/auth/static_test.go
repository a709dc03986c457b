package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// TestStaticConstantTime checks the constant-time path: every request's
// token is hashed and compared with every configured token, whether it
// matches the first, the last or none, and whatever its length.
func TestStaticConstantTime(t *testing.T) {
	var tokens []StaticToken
	for i := range 5 {
		tokens = append(tokens, StaticToken{Token: fmt.Sprintf("token-%d-%s", i, strings.Repeat("x", i*7))})
	}
	s, err := NewStatic(tokens)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	orig := tokenEqual
	t.Cleanup(func() { tokenEqual = orig })
	tokenEqual = func(a, b *[sha256.Size]byte) int {
		calls++
		return orig(a, b)
	}
	for _, tc := range []struct {
		name  string
		token string
		want  error
	}{
		{"first", tokens[0].Token, nil},
		{"last", tokens[4].Token, nil},
		{"unknown", "nope", ErrUnauthenticated},
		{"prefix of a token", tokens[4].Token[:len(tokens[4].Token)-1], ErrUnauthenticated},
		{"token plus a byte", tokens[2].Token + "x", ErrUnauthenticated},
		{"very long", strings.Repeat("t", 1<<16), ErrUnauthenticated},
	} {
		calls = 0
		err := s.Authorize(context.Background(), Request{Action: ActionRead, Stream: "s", Token: tc.token})
		if (err == nil) != (tc.want == nil) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if calls != len(tokens) {
			t.Errorf("%s: %d comparisons, want %d (one per token, no early exit)", tc.name, calls, len(tokens))
		}
	}
	// No token at all is rejected before any comparison.
	calls = 0
	if err := s.Authorize(context.Background(), Request{Action: ActionRead}); err != ErrNoToken {
		t.Errorf("no token: got %v, want ErrNoToken", err)
	}
}

func TestStaticGrants(t *testing.T) {
	s, err := NewStatic([]StaticToken{
		{Token: "all"},
		{Token: "cam-publisher", Actions: []string{"publish"}, Streams: []string{"cam-*", "door"}},
		{Token: "api", Actions: []string{"api"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token  string
		action Action
		stream string
		want   error
		reason string
	}{
		{"all", ActionPublish, "x", nil, ""},
		{"all", ActionAPI, "", nil, ""},
		{"cam-publisher", ActionPublish, "cam-7", nil, ""},
		{"cam-publisher", ActionPublish, "door", nil, ""},
		{"cam-publisher", ActionPublish, "doors", ErrForbidden, `token does not allow publish on stream "doors"`},
		{"cam-publisher", ActionRead, "cam-7", ErrForbidden, "does not allow read"},
		{"api", ActionAPI, "", nil, ""},
		{"api", ActionAPI, "cam-1", nil, ""},
		{"api", ActionRead, "cam-1", ErrForbidden, "does not allow read"},
		{"API", ActionAPI, "", ErrUnauthenticated, "unknown token"},
	} {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.token, tc.action, tc.stream), func(t *testing.T) {
			err := s.Authorize(context.Background(), Request{Action: tc.action, Stream: tc.stream, Token: tc.token})
			checkErr(t, err, tc.want, tc.reason)
		})
	}
}

func TestNewStaticErrors(t *testing.T) {
	for _, tc := range []struct {
		tokens []StaticToken
		want   string
	}{
		{nil, "no tokens"},
		{[]StaticToken{{Token: ""}}, "tokens[0].token: empty"},
		{[]StaticToken{{Token: "a"}, {Token: "a"}}, "tokens[1].token: same as tokens[0]"},
		{[]StaticToken{{Token: "a", Actions: []string{"write"}}}, `tokens[0].actions: "write" is not an action`},
		{[]StaticToken{{Token: "a", Streams: []string{"["}}}, "tokens[0].streams[0]"},
	} {
		_, err := NewStatic(tc.tokens)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.tokens, err, tc.want)
		}
	}
}
