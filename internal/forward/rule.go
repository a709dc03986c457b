package forward

import (
	"fmt"
	"net/url"
	"path"
	"strings"
)

// Rule forwards the streams whose names match Streams (a path.Match
// glob: "live-*", "*") to every URL in To.
type Rule struct {
	Streams string   `yaml:"streams"`
	To      []string `yaml:"to"`
}

// Check reports what is wrong with the rule, or nil: a bad glob, no
// target, or a target that is not an rtmp://, rtmps:// or srt:// URL with
// a host and port.
func (r Rule) Check() error {
	if r.Streams == "" {
		return fmt.Errorf("streams: is empty (allowed: a glob such as \"live-*\" or \"*\")")
	}
	if _, err := path.Match(r.Streams, ""); err != nil {
		return fmt.Errorf("streams: %q is not a glob: %v", r.Streams, err)
	}
	if len(r.To) == 0 {
		return fmt.Errorf("to: is empty (allowed: rtmp://, rtmps:// or srt:// URLs)")
	}
	for i, t := range r.To {
		if _, err := parseTarget(t); err != nil {
			return fmt.Errorf("to[%d]: %w", i, err)
		}
	}
	return nil
}

// matches reports whether the rule forwards the stream.
func (r Rule) matches(stream string) bool {
	ok, _ := path.Match(r.Streams, stream)
	return ok
}

// parseTarget checks a target URL.
func parseTarget(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL", redact(s))
	}
	switch u.Scheme {
	case "rtmp", "rtmps", "srt":
	default:
		return nil, fmt.Errorf("%q: scheme %q is not allowed (allowed: rtmp, rtmps, srt)", redact(s), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("%q has no host", redact(s))
	}
	if u.Scheme == "srt" && u.Port() == "" {
		return nil, fmt.Errorf("%q has no port (SRT has no default port)", redact(s))
	}
	return u, nil
}

// redact shortens a target URL for logs, errors and the API: the scheme,
// host and path without its last element (the stream key) or the query
// (which may hold a passphrase or token).
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		if i := strings.Index(s, "://"); i >= 0 {
			return s[:i+3] + "…"
		}
		return "…"
	}
	out := u.Scheme + "://" + u.Host
	if p := strings.Trim(u.Path, "/"); p != "" {
		if dir, _ := path.Split(p); dir != "" {
			out += "/" + dir + "…"
		} else {
			out += "/…"
		}
	}
	if u.RawQuery != "" {
		out += "?…"
	}
	return out
}
