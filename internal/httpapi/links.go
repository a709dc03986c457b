package httpapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ICEServer is one STUN or TURN server announced to clients in a Link
// rel="ice-server" header (RFC 9725 §4.6). With TURNSecret set, each
// response carries fresh time-limited credentials instead of Credential.
type ICEServer struct {
	URLs       []string      // stun:, stuns:, turn: or turns: URLs
	Username   string        // static TURN username, or the user part with TURNSecret
	Credential string        // static TURN password
	TURNSecret string        // secret shared with the TURN server (coturn static-auth-secret)
	TURNTTL    time.Duration // lifetime of generated credentials; 0: 24h
}

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
func linkHeaders(servers []ICEServer, now time.Time) []string {
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
