package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
)

// StaticToken is one pre-shared bearer token and what it allows.
type StaticToken struct {
	Token   string   `yaml:"token"`   // the secret; sent as "Authorization: Bearer <token>"
	Actions []string `yaml:"actions"` // publish, read, api; empty = all
	Streams []string `yaml:"streams"` // path.Match patterns; empty = all ("*")
}

// Static is an Authenticator over a fixed list of bearer tokens.
//
// Only SHA-256 digests of the tokens are kept, and a request's token is
// compared with every one of them in constant time, so neither the position
// of a match nor the length of a near miss shows in the response time.
type Static struct {
	entries []staticEntry
}

type staticEntry struct {
	digest [sha256.Size]byte
	grant  grant
}

// tokenEqual compares two digests; a variable so that tests can count calls.
var tokenEqual = func(a, b *[sha256.Size]byte) int {
	return subtle.ConstantTimeCompare(a[:], b[:])
}

// NewStatic returns the Authenticator for tokens. Tokens must be non-empty
// and distinct.
func NewStatic(tokens []StaticToken) (*Static, error) {
	if len(tokens) == 0 {
		return nil, errors.New("no tokens")
	}
	s := &Static{entries: make([]staticEntry, 0, len(tokens))}
	seen := make(map[[sha256.Size]byte]int, len(tokens))
	for i, t := range tokens {
		if t.Token == "" {
			return nil, fmt.Errorf("tokens[%d].token: empty", i)
		}
		d := sha256.Sum256([]byte(t.Token))
		if j, dup := seen[d]; dup {
			return nil, fmt.Errorf("tokens[%d].token: same as tokens[%d].token", i, j)
		}
		seen[d] = i
		acts, err := parseActions(t.Actions)
		if err != nil {
			return nil, fmt.Errorf("tokens[%d].actions: %w", i, err)
		}
		streams := t.Streams
		if len(streams) == 0 {
			streams = []string{"*"}
		}
		for k, p := range streams {
			if err := checkPattern(p); err != nil {
				return nil, fmt.Errorf("tokens[%d].streams[%d]: %w", i, k, err)
			}
		}
		s.entries = append(s.entries, staticEntry{digest: d, grant: grant{actions: acts, streams: streams}})
	}
	return s, nil
}

// Authorize allows r when its token is one of the list and that token allows
// the action on the stream.
func (s *Static) Authorize(_ context.Context, r Request) error {
	if r.Token == "" {
		return ErrNoToken
	}
	d := sha256.Sum256([]byte(r.Token))
	match := -1
	for i := range s.entries {
		// No early exit and no branch on the result: every entry is
		// compared and the match is selected in constant time.
		match = subtle.ConstantTimeSelect(tokenEqual(&d, &s.entries[i].digest), i, match)
	}
	if match < 0 {
		return fmt.Errorf("%w: unknown token", ErrUnauthenticated)
	}
	if g := s.entries[match].grant; !g.allows(r.Action, r.Stream) {
		return forbidden("token", r.Action, r.Stream)
	}
	return nil
}
