package auth

import (
	"context"
	"errors"
	"testing"
)

// named allows every request and records that it decided.
type named struct {
	name    string
	decided *string
}

func (n named) Authorize(context.Context, Request) error {
	*n.decided = n.name
	return nil
}

func TestRulesOrder(t *testing.T) {
	var decided string
	rule := func(streams, name string, acts ...Action) Rule {
		return Rule{Streams: streams, Actions: acts, Auth: named{name, &decided}}
	}
	rules := []Rule{
		rule("cam-secret", "secret"),
		rule("cam-*", "cam-publish", ActionPublish),
		rule("*", "read-any", ActionRead),
		rule("", "api", ActionAPI),
		rule("cam-*", "cam-read", ActionRead), // never reached: read-any is first
	}
	for _, def := range []string{"allow", "deny"} {
		var d Authenticator
		if def == "deny" {
			d = noRule{}
		}
		rs, err := NewRules(rules, d)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			action Action
			stream string
			want   string // the rule that decides; "" = the default
		}{
			{ActionPublish, "cam-secret", "secret"},
			{ActionRead, "cam-secret", "secret"},
			{ActionAPI, "cam-secret", "secret"},
			{ActionPublish, "cam-1", "cam-publish"},
			{ActionRead, "cam-1", "read-any"},
			{ActionRead, "", "read-any"},
			{ActionAPI, "", "api"},
			{ActionAPI, "lobby", "api"},
			{ActionPublish, "lobby", ""},
			{ActionPublish, "", ""},
		} {
			decided = ""
			err := rs.Authorize(context.Background(), Request{Action: tc.action, Stream: tc.stream})
			if decided != tc.want {
				t.Errorf("default %s, %s %q: decided by %q, want %q", def, tc.action, tc.stream, decided, tc.want)
			}
			switch {
			case tc.want != "" && err != nil:
				t.Errorf("default %s, %s %q: %v", def, tc.action, tc.stream, err)
			case tc.want == "" && def == "allow" && err != nil:
				t.Errorf("default allow, %s %q: %v", tc.action, tc.stream, err)
			case tc.want == "" && def == "deny" && !errors.Is(err, ErrForbidden):
				t.Errorf("default deny, %s %q: got %v, want ErrForbidden", tc.action, tc.stream, err)
			}
		}
	}
}

func TestNewRulesErrors(t *testing.T) {
	if _, err := NewRules([]Rule{{Streams: "[", Auth: AllowAll{}}}, nil); err == nil {
		t.Error("bad pattern accepted")
	}
	if _, err := NewRules([]Rule{{Streams: "*"}}, nil); err == nil {
		t.Error("rule without authenticator accepted")
	}
}
