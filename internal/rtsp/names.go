package rtsp

// maxNameLen bounds stream names, as the HTTP edge does.
const maxNameLen = 128

// ValidName accepts the stream names the HTTP edge accepts (httpapi's
// validName): 1-128 of letters, digits and "-_.~", not starting with a dot.
func ValidName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '.' {
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
