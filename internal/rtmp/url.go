package rtmp

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/sluice-media/sluice/internal/hub"
)

// Errors of a connection's URL.
var (
	ErrNoStream = errors.New("no stream name in the URL")
	ErrBadName  = errors.New("invalid stream name")
)

// streamOf returns the stream name (the last path element) and the token
// (?token=T, on the URL or the stream key) of a connection's URL.
//
// gortmplib joins the connect command's tcUrl and the stream key: OBS's
// rtmp://HOST/live with key NAME?token=T gives /live/NAME?token=T. A token
// on the server URL and a key after it (rtmp://HOST/live?token=T, key NAME)
// give the query "token=T/NAME", which is read as well.
func streamOf(u *url.URL) (name, token string, err error) {
	if u == nil {
		return "", "", ErrNoStream
	}
	p, q := u.Path, u.RawQuery
	if i := strings.IndexByte(q, '/'); i >= 0 {
		p, q = p+"/"+q[i+1:], q[:i]
		if j := strings.IndexByte(p, '?'); j >= 0 {
			p, q = p[:j], q+"&"+p[j+1:]
		}
	}
	name = path.Base(strings.TrimRight(p, "/"))
	if name == "." || name == "/" || name == "" {
		return "", "", ErrNoStream
	}
	if !hub.ValidName(name) {
		return "", "", fmt.Errorf("%w: %.40q (%s)", ErrBadName, name, hub.NameRule)
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return "", "", fmt.Errorf("query: %w", err)
	}
	return name, vals.Get("token"), nil
}
