package hub

import (
	"errors"
	"fmt"
)

// MaxNameLen bounds stream names (they appear in URLs, logs and file
// names).
const MaxNameLen = 128

// ErrBadName means a stream name breaks the naming rule (see CheckName).
var ErrBadName = errors.New("invalid stream name")

// CheckName accepts 1 to MaxNameLen letters, digits and "-_.~", not
// starting with a dot: the rule of the HTTP edge's /whip/{stream}, for
// the edges (RTMP, SRT) that take the name from elsewhere.
func CheckName(s string) error {
	ok := s != "" && len(s) <= MaxNameLen && s[0] != '.'
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
		default:
			ok = false
		}
	}
	if !ok {
		return fmt.Errorf("%w: %.40q (1-%d of A-Z a-z 0-9 - _ . ~, not starting with a dot)", ErrBadName, s, MaxNameLen)
	}
	return nil
}
