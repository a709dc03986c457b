package auth

import (
	"fmt"
	"path"
)

// grant is what a credential allows: a set of actions on streams whose
// names match one of the patterns (path.Match syntax; "*" matches any name).
type grant struct {
	actions []Action
	streams []string
}

// allows reports whether g permits action on stream.
func (g grant) allows(action Action, stream string) bool {
	return hasAction(g.actions, action) && matchAny(g.streams, stream)
}

// forbidden is the ErrForbidden for a credential that lacks action on stream.
func forbidden(what string, action Action, stream string) error {
	if stream == "" {
		return fmt.Errorf("%w: %s does not allow %s", ErrForbidden, what, action)
	}
	return fmt.Errorf("%w: %s does not allow %s on stream %q", ErrForbidden, what, action, stream)
}

func hasAction(list []Action, a Action) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// matchAny reports whether name matches one of patterns. A malformed
// pattern (possible only in a JWT claim; config patterns are validated)
// matches nothing.
func matchAny(patterns []string, name string) bool {
	for _, p := range patterns {
		if ok, err := path.Match(p, name); ok && err == nil {
			return true
		}
	}
	return false
}

// parseActions converts config strings to Actions; empty means all actions.
func parseActions(list []string) ([]Action, error) {
	if len(list) == 0 {
		return actions, nil
	}
	out := make([]Action, 0, len(list))
	for _, s := range list {
		a := Action(s)
		if !a.valid() {
			return nil, fmt.Errorf("%q is not an action (allowed: publish, read, api)", s)
		}
		out = append(out, a)
	}
	return out, nil
}

// checkPattern reports a pattern that path.Match would reject.
func checkPattern(p string) error {
	if p == "" {
		return fmt.Errorf("empty pattern (use \"*\" for any stream)")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("%q is not a valid pattern (path.Match syntax: * ? [a-z] \\)", p)
	}
	return nil
}
