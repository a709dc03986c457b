package auth

import (
	"context"
	"fmt"
	"path"
)

// Rule sends requests for some actions on streams matching a pattern to an
// Authenticator.
type Rule struct {
	// Streams is a path.Match pattern; "*" (or "") matches any name,
	// including the empty name of server-wide API calls.
	Streams string
	// Actions the rule covers; empty covers all.
	Actions []Action
	// Auth decides the requests the rule covers.
	Auth Authenticator
}

// matches reports whether the rule covers r.
func (rl Rule) matches(r Request) bool {
	if len(rl.Actions) > 0 && !hasAction(rl.Actions, r.Action) {
		return false
	}
	if rl.Streams == "" || rl.Streams == "*" {
		return true
	}
	ok, err := path.Match(rl.Streams, r.Stream)
	return ok && err == nil
}

// Rules is an Authenticator that combines others per stream pattern and
// action: the first rule that covers a request decides it; a request no rule
// covers goes to Default.
type Rules struct {
	Rules []Rule
	// Default decides requests no rule covers; nil allows them.
	Default Authenticator
}

// NewRules checks the rules' patterns and returns the combined
// Authenticator. def decides what no rule covers; nil means allow.
func NewRules(rules []Rule, def Authenticator) (*Rules, error) {
	for i, rl := range rules {
		if rl.Streams != "" {
			if err := checkPattern(rl.Streams); err != nil {
				return nil, fmt.Errorf("rule %d: %w", i, err)
			}
		}
		if rl.Auth == nil {
			return nil, fmt.Errorf("rule %d: no authenticator", i)
		}
	}
	return &Rules{Rules: rules, Default: def}, nil
}

// Authorize lets the first rule covering r decide it, else Default.
func (rs *Rules) Authorize(ctx context.Context, r Request) error {
	for _, rl := range rs.Rules {
		if rl.matches(r) {
			return rl.Auth.Authorize(ctx, r)
		}
	}
	if rs.Default == nil {
		return nil
	}
	return rs.Default.Authorize(ctx, r)
}

// noRule denies requests that no rule covers when the default is "deny".
type noRule struct{}

func (noRule) Authorize(_ context.Context, r Request) error {
	if r.Stream == "" {
		return fmt.Errorf("%w: no rule allows %s", ErrForbidden, r.Action)
	}
	return fmt.Errorf("%w: no rule allows %s on stream %q", ErrForbidden, r.Action, r.Stream)
}
