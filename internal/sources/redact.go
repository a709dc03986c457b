package sources

import (
	"net/url"
	"strings"
)

// secretParams are query parameters that some cameras take credentials
// in (rtsp://host/stream?user=admin&password=…).
var secretParams = []string{"user", "username", "password", "pass", "passwd", "pwd", "token", "auth", "key"}

// Redact is the URL without its credentials, for the API and the logs:
// the user information and any credential-like query value become
// "xxxxx".
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(an unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("xxxxx")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			for _, s := range secretParams {
				if strings.EqualFold(k, s) {
					q.Set(k, "xxxxx")
				}
			}
		}
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// scrub is err's message with the URL's secrets taken out, should the
// client's error quote the URL.
func scrub(raw string, err error) string {
	if err == nil {
		return "closed"
	}
	msg := err.Error()
	u, perr := url.Parse(raw)
	if perr != nil {
		return strings.ReplaceAll(msg, raw, "(the source URL)")
	}
	var secrets []string
	if u.User != nil {
		secrets = append(secrets, u.User.String())
		if pw, ok := u.User.Password(); ok && pw != "" {
			secrets = append(secrets, pw, url.PathEscape(pw), url.QueryEscape(pw))
		}
	}
	q := u.Query()
	for k, vs := range q {
		for _, s := range secretParams {
			if strings.EqualFold(k, s) {
				for _, v := range vs {
					if v != "" {
						secrets = append(secrets, v)
					}
				}
			}
		}
	}
	for _, s := range secrets {
		if len(s) >= 3 { // a one- or two-letter secret would blank ordinary words
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}
