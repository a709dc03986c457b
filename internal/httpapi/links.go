package httpapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-media/sluice/internal/config"
)

// defaultTURNTTL is the lifetime of generated TURN credentials.
const defaultTURNTTL = 24 * time.Hour

// linkHeaders renders the configured ICE servers as Link header values
// (RFC 9725 §4.6, after RFC 8288):
//
//	<turn:turn.example.net>; rel="ice-server"; username="u"; credential="p"; credential-type="password"
//
// A server with a TURN secret gets credentials of the TURN REST API scheme
// (draft-uberti-behave-turn-rest): username "expiry:user" and credential
// base64(HMAC-SHA1(secret, username)), valid until expiry.
func linkHeaders(servers []config.LinkICEServer, now time.Time) []string {
	var out []string
	for _, s := range servers {
		user, cred := s.Username, s.Credential
		if s.TURNSecret != "" {
			ttl := s.TURNTTL
			if ttl <= 0 {
				ttl = defaultTURNTTL
			}
			user = strconv.FormatInt(now.Add(ttl).Unix(), 10)
			if s.Username != "" {
				user += ":" + s.Username
			}
			mac := hmac.New(sha1.New, []byte(s.TURNSecret))
			mac.Write([]byte(user))
			cred = base64.StdEncoding.EncodeToString(mac.Sum(nil))
		}
		for _, u := range s.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if cred != "" && (strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:")) {
				l += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, user, cred)
			}
			out = append(out, l)
		}
	}
	return out
}
