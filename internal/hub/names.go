package hub

import "fmt"

// MaxNameLen bounds stream names: they appear in URLs, logs and file
// names.
const MaxNameLen = 128

// ValidName reports whether s may name a stream: 1 to MaxNameLen of
// letters, digits and "-_.~", not starting with a dot. Every edge (HTTP,
// RTSP, the config's sources) applies this one rule.
func ValidName(s string) bool {
	if s == "" || len(s) > MaxNameLen || s[0] == '.' {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '_', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}

// NameRule says what ValidName accepts, for error messages.
var NameRule = fmt.Sprintf("1-%d of A-Z a-z 0-9 - _ . ~, not starting with a dot", MaxNameLen)
