package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

const (
	sdpType  = "application/sdp"
	fragType = "application/trickle-ice-sdpfrag"
)

// The ICE servers TestConformance configures: a STUN server, a TURN server
// with a static password, and one with TURN REST API credentials.
const (
	turnSecret = "turn-shared-secret-for-the-test"
	turnUser   = "alice"
	turnTTL    = time.Hour
)

var conformanceICEServers = []config.LinkICEServer{
	{URLs: []string{"stun:stun.example.net:3478"}},
	{URLs: []string{"turn:static.example.net:3478?transport=udp"}, Username: "static-user", Credential: "static-pass"},
	{URLs: []string{"turn:rest.example.net:3478", "turns:rest.example.net:5349"}, Username: turnUser, TURNSecret: turnSecret, TURNTTL: turnTTL},
}

// TestConformance checks the HTTP edge's status codes and headers (RFC 9725
// §4) case by case against the real server, and after each case that the
// server still answers. The limits (429, 503, 409, publisher takeover) and
// HTTPS have subtests with their own server configuration.
func TestConformance(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	srv := startEdgeServer(t, func(c *config.Config) {
		c.HTTP.ICEServers = conformanceICEServers
		c.HTTP.ICEServersOnOptions = true
	})
	base := srv.base
	whipOffer := rawOffer(t, true)
	whepOffer := rawOffer(t, false)

	pub, err := client.Publish(t.Context(), base+"/whip/live", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	feedCtx, stopFeed := context.WithCancel(t.Context())
	fed := looseFeed(feedCtx, pub, loadClip(t))
	defer func() { stopFeed(); <-fed }()
	pubID := pub.Location()[strings.LastIndex(pub.Location(), "/")+1:]

	trickle := fragment(t, pub.Offer(), "", "", "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n")
	restart := fragment(t, pub.Offer(), "newufrag", "aNewIcePasswordOf24Chars", "a=end-of-candidates\r\n")

	// deleteIt ends a session a case created.
	deleteIt := func(t *testing.T, r response) {
		t.Helper()
		loc := r.header.Get("Location")
		if d := send(t, nil, http.MethodDelete, base+loc, nil, ""); d.status != http.StatusOK {
			t.Errorf("DELETE %s: %d %s", loc, d.status, d.body)
		}
	}
	created := func(kind, stream string) func(*testing.T, response) {
		return func(t *testing.T, r response) {
			checkCreated(t, r, kind, stream, true)
			deleteIt(t, r)
		}
	}
	ct := func(v string) map[string]string { return map[string]string{"Content-Type": v} }
	patchHdr := func(ifMatch string) map[string]string {
		h := ct(fragType)
		if ifMatch != "" {
			h["If-Match"] = ifMatch
		}
		return h
	}
	allow := func(methods ...string) func(*testing.T, response) {
		return func(t *testing.T, r response) {
			if a := r.header.Get("Allow"); !containsAll(a, methods...) {
				t.Errorf("Allow %q, want %v", a, methods)
			}
		}
	}
	bigBody := strings.Repeat("a=x-pad:0123456789abcdef\r\n", 70_000/26)

	cases := []struct {
		name   string
		method string
		url    string
		header map[string]string
		body   string
		want   int
		check  func(*testing.T, response)
	}{
		{"WHIP POST", http.MethodPost, base + "/whip/conf", ct(sdpType), whipOffer, http.StatusCreated, created("whip", "conf")},
		{"WHIP POST, media type with parameters", http.MethodPost, base + "/whip/conf2", ct("application/sdp; charset=utf-8"), whipOffer, http.StatusCreated, created("whip", "conf2")},
		{"WHEP POST", http.MethodPost, base + "/whep/live", ct(sdpType), whepOffer, http.StatusCreated, created("whep", "live")},
		{"OPTIONS endpoint", http.MethodOptions, base + "/whip/conf", nil, "", http.StatusNoContent, func(t *testing.T, r response) {
			checkPreflight(t, r)
			checkLinks(t, r.header)
		}},
		{"OPTIONS session", http.MethodOptions, pub.Location(), nil, "", http.StatusNoContent, checkPreflight},
		{"PATCH trickle", http.MethodPatch, pub.Location(), patchHdr(pub.ETag()), trickle, http.StatusNoContent, nil},
		{"PATCH trickle, If-Match *", http.MethodPatch, pub.Location(), patchHdr("*"), trickle, http.StatusNoContent, nil},
		{"PATCH end-of-candidates", http.MethodPatch, pub.Location(), patchHdr(pub.ETag()), "a=end-of-candidates\r\n", http.StatusNoContent, nil},
		{"PATCH other ETag", http.MethodPatch, pub.Location(), patchHdr(`"not-the-etag"`), trickle, http.StatusPreconditionFailed, nil},
		{"PATCH restart, other ETag", http.MethodPatch, pub.Location(), patchHdr(`"not-the-etag"`), restart, http.StatusPreconditionFailed, nil},
		{"PATCH restart without If-Match", http.MethodPatch, pub.Location(), patchHdr(""), restart, http.StatusPreconditionRequired, nil},
		{"PATCH as SDP", http.MethodPatch, pub.Location(), ct(sdpType), trickle, http.StatusUnsupportedMediaType, nil},
		{"PATCH without Content-Type", http.MethodPatch, pub.Location(), nil, trickle, http.StatusUnsupportedMediaType, nil},
		{"PATCH garbage", http.MethodPatch, pub.Location(), patchHdr(pub.ETag()), "this is not\nan SDP fragment\n", http.StatusBadRequest, nil},
		{"PATCH over the body limit", http.MethodPatch, pub.Location(), patchHdr(pub.ETag()), trickle + bigBody, http.StatusRequestEntityTooLarge, nil},
		{"PATCH unknown session", http.MethodPatch, base + "/whip/live/nosuchsession", patchHdr("*"), trickle, http.StatusNotFound, nil},
		{"PATCH session under WHEP", http.MethodPatch, base + "/whep/live/" + pubID, patchHdr("*"), trickle, http.StatusNotFound, nil},
		{"PATCH session under another stream", http.MethodPatch, base + "/whip/other/" + pubID, patchHdr("*"), trickle, http.StatusNotFound, nil},
		{"PATCH endpoint", http.MethodPatch, base + "/whip/live", patchHdr("*"), trickle, http.StatusMethodNotAllowed, allow("POST", "OPTIONS")},
		{"GET session", http.MethodGet, pub.Location(), nil, "", http.StatusMethodNotAllowed, allow("PATCH", "DELETE", "OPTIONS")},
		{"POST session", http.MethodPost, pub.Location(), ct(sdpType), whipOffer, http.StatusMethodNotAllowed, allow("PATCH", "DELETE", "OPTIONS")},
		{"PUT endpoint", http.MethodPut, base + "/whip/live", ct(sdpType), whipOffer, http.StatusMethodNotAllowed, allow("POST", "OPTIONS")},
		{"POST over the body limit", http.MethodPost, base + "/whip/big", ct(sdpType), whipOffer + bigBody, http.StatusRequestEntityTooLarge, nil},
		{"POST text/plain", http.MethodPost, base + "/whip/ct", ct("text/plain"), whipOffer, http.StatusUnsupportedMediaType, nil},
		{"second publisher", http.MethodPost, base + "/whip/live", ct(sdpType), whipOffer, http.StatusConflict, nil},
		{"WHEP unknown stream", http.MethodPost, base + "/whep/nosuchstream", ct(sdpType), whepOffer, http.StatusNotFound, nil},
		{"DELETE unknown session", http.MethodDelete, base + "/whep/live/nosuchsession", nil, "", http.StatusNotFound, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, nil, c.method, c.url, c.header, c.body)
			if r.status != c.want {
				t.Fatalf("status %d, want %d (body %q)", r.status, c.want, r.body)
			}
			checkCommon(t, r)
			if c.check != nil {
				c.check(t, r)
			}
			if h := send(t, nil, http.MethodGet, base+"/healthz", nil, ""); h.status != http.StatusOK {
				t.Fatalf("server no longer answers: /healthz %d", h.status)
			}
		})
	}

	t.Run("ICE restart", func(t *testing.T) {
		// The client checks the 200, the fragment media type and the new
		// ETag; the publisher must stay connected.
		before := pub.ETag()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := pub.RestartICE(ctx); err != nil {
			t.Fatal(err)
		}
		if pub.ETag() == before {
			t.Error("ETag unchanged by the restart")
		}
		// The old ETag no longer matches.
		if r := send(t, nil, http.MethodPatch, pub.Location(), patchHdr(before), trickle); r.status != http.StatusPreconditionFailed {
			t.Errorf("PATCH with the ETag from before the restart: %d, want 412", r.status)
		}
		if r := send(t, nil, http.MethodPatch, pub.Location(), patchHdr(pub.ETag()), "a=end-of-candidates\r\n"); r.status != http.StatusNoContent {
			t.Errorf("PATCH with the new ETag: %d, want 204", r.status)
		}
	})
	select {
	case <-pub.Done():
		t.Fatal("the live publisher ended")
	default:
	}

	t.Run("limits", func(t *testing.T) { testLimits(t, whipOffer, whepOffer) })
	t.Run("publisher takeover", testTakeover)
	t.Run("HTTPS", testHTTPS)

	if err := pub.Close(); err != nil {
		t.Error(err)
	}
	srv.waitSessions(t, 0, 10*time.Second)
}

// checkCommon checks what every response carries: CORS headers, and for
// errors a one-line text/plain reason, Allow on 405, Retry-After on 429 and
// 503, WWW-Authenticate on 401.
func checkCommon(t *testing.T, r response) {
	t.Helper()
	if got := r.header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin %q, want *", got)
	}
	if got := r.header.Get("Access-Control-Expose-Headers"); !containsAll(got, "Location", "ETag", "Link") {
		t.Errorf("Access-Control-Expose-Headers %q lacks Location, ETag or Link", got)
	}
	if r.status < 400 {
		return
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("error Content-Type %q, want text/plain", ct)
	}
	if reason := strings.TrimRight(r.body, "\n"); reason == "" || strings.Contains(reason, "\n") {
		t.Errorf("error body %q is not one line", r.body)
	}
	switch r.status {
	case http.StatusMethodNotAllowed:
		if r.header.Get("Allow") == "" {
			t.Error("405 without Allow")
		}
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		if s, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || s < 1 {
			t.Errorf("%d with Retry-After %q, want seconds", r.status, r.header.Get("Retry-After"))
		}
	case http.StatusUnauthorized:
		if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 with WWW-Authenticate %q, want Bearer", r.header.Get("WWW-Authenticate"))
		}
	}
}

var sessionPath = regexp.MustCompile(`^/(whip|whep)/([^/]+)/([A-Za-z0-9_-]{16,})$`)

// checkCreated checks a 201 (RFC 9725 §4.2): the answer as application/sdp,
// the session URL in Location, an ETag, Accept-Patch for trickle ICE, and
// the ice-server Links when links is set.
func checkCreated(t *testing.T, r response, kind, stream string, links bool) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, sdpType) {
		t.Errorf("Content-Type %q, want %s", ct, sdpType)
	}
	if m := sessionPath.FindStringSubmatch(r.header.Get("Location")); m == nil || m[1] != kind || m[2] != stream {
		t.Errorf("Location %q, want /%s/%s/<session>", r.header.Get("Location"), kind, stream)
	}
	if e := r.header.Get("ETag"); len(e) < 3 || e[0] != '"' || e[len(e)-1] != '"' {
		t.Errorf("ETag %q, want a strong quoted entity tag", e)
	}
	if ap := r.header.Get("Accept-Patch"); ap != fragType {
		t.Errorf("Accept-Patch %q, want %s", ap, fragType)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(r.body); err != nil {
		t.Errorf("answer is not SDP: %v", err)
	}
	if links {
		checkLinks(t, r.header)
	} else if l := r.header.Values("Link"); len(l) > 0 {
		t.Errorf("Link headers without ICE servers configured: %q", l)
	}
}

// checkPreflight checks a CORS preflight answer.
func checkPreflight(t *testing.T, r response) {
	t.Helper()
	if m := r.header.Get("Access-Control-Allow-Methods"); !containsAll(m, "POST", "PATCH", "DELETE", "OPTIONS") {
		t.Errorf("Access-Control-Allow-Methods %q", m)
	}
	if h := r.header.Get("Access-Control-Allow-Headers"); !containsAll(strings.ToLower(h), "authorization", "content-type", "if-match") {
		t.Errorf("Access-Control-Allow-Headers %q", h)
	}
}

// link is one parsed Link header value (RFC 8288).
type link struct {
	uri    string
	params map[string]string
}

// parseLinks parses Link header values; each may hold several links.
func parseLinks(values []string) ([]link, bool) {
	var out []link
	for _, v := range values {
		for _, part := range splitOutside(v, ',') {
			part = strings.TrimSpace(part)
			if !strings.HasPrefix(part, "<") {
				return nil, false
			}
			end := strings.IndexByte(part, '>')
			if end < 0 {
				return nil, false
			}
			l := link{uri: part[1:end], params: map[string]string{}}
			for _, p := range splitOutside(part[end+1:], ';')[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if uq, err := strconv.Unquote(val); err == nil {
					val = uq
				}
				l.params[strings.ToLower(k)] = val
			}
			out = append(out, l)
		}
	}
	return out, true
}

// splitOutside splits s at sep, except inside <...> and "...".
func splitOutside(s string, sep byte) []string {
	var out []string
	start, inQ, inA := 0, false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' && !inA:
			inQ = !inQ
		case c == '<' && !inQ:
			inA = true
		case c == '>' && !inQ:
			inA = false
		case c == sep && !inQ && !inA:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// checkLinks checks the ice-server Links for conformanceICEServers (RFC
// 9725 §4.6), and the TURN REST API credentials: username
// "<expiry>:alice", credential base64(HMAC-SHA1(secret, username)).
func checkLinks(t *testing.T, h http.Header) {
	t.Helper()
	links, ok := parseLinks(h.Values("Link"))
	if !ok {
		t.Fatalf("malformed Link headers %q", h.Values("Link"))
	}
	byURI := map[string]link{}
	for _, l := range links {
		if l.params["rel"] != "ice-server" {
			t.Errorf("Link %q has rel %q, want ice-server", l.uri, l.params["rel"])
		}
		byURI[l.uri] = l
	}
	if len(byURI) != 4 {
		t.Errorf("%d ice-server Links, want 4: %q", len(byURI), h.Values("Link"))
	}
	if l, ok := byURI["stun:stun.example.net:3478"]; !ok {
		t.Error("no Link for the STUN server")
	} else if _, has := l.params["username"]; has {
		t.Error("STUN Link with a username")
	}
	st, ok := byURI["turn:static.example.net:3478?transport=udp"]
	if !ok || st.params["username"] != "static-user" || st.params["credential"] != "static-pass" || st.params["credential-type"] != "password" {
		t.Errorf("static TURN Link %+v", st)
	}
	for _, uri := range []string{"turn:rest.example.net:3478", "turns:rest.example.net:5349"} {
		l, ok := byURI[uri]
		if !ok {
			t.Errorf("no Link for %s", uri)
			continue
		}
		user, cred := l.params["username"], l.params["credential"]
		exp, name, _ := strings.Cut(user, ":")
		expiry, err := strconv.ParseInt(exp, 10, 64)
		if err != nil || name != turnUser {
			t.Errorf("%s: username %q, want <unix expiry>:%s", uri, user, turnUser)
			continue
		}
		if d := time.Until(time.Unix(expiry, 0)); d < turnTTL-time.Minute || d > turnTTL+time.Minute {
			t.Errorf("%s: credentials expire in %v, want %v", uri, d, turnTTL)
		}
		mac := hmac.New(sha1.New, []byte(turnSecret))
		mac.Write([]byte(user))
		if want := base64.StdEncoding.EncodeToString(mac.Sum(nil)); cred != want {
			t.Errorf("%s: credential %q, want base64(HMAC-SHA1(secret, %q)) = %q", uri, cred, user, want)
		}
		if l.params["credential-type"] != "password" {
			t.Errorf("%s: credential-type %q", uri, l.params["credential-type"])
		}
	}
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// fragment builds a trickle-ICE SDP fragment for the session whose offer is
// given: its ICE credentials (or ufrag and pwd, if set), its first media
// section, and the extra lines.
func fragment(t testing.TB, offer, ufrag, pwd, extra string) string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	m := d.MediaDescriptions[0]
	mid, _ := m.Attribute("mid")
	if ufrag == "" {
		ufrag, _ = m.Attribute("ice-ufrag")
		pwd, _ = m.Attribute("ice-pwd")
	}
	return "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n" +
		"m=" + m.MediaName.Media + " 9 " + strings.Join(m.MediaName.Protos, "/") + " " + strings.Join(m.MediaName.Formats, " ") + "\r\n" +
		"a=mid:" + mid + "\r\n" + extra
}

// testLimits checks the admission limits, each on its own server: 429 past
// the per-address limit, 503 past the session and viewer limits (all with
// Retry-After), 409 for a second publisher while the first is connected or
// still connecting; and that a freed place can be taken again.
func testLimits(t *testing.T, whipOffer, whepOffer string) {
	post := func(t *testing.T, base, path, offer string) response {
		t.Helper()
		r := send(t, nil, http.MethodPost, base+path, map[string]string{"Content-Type": sdpType}, offer)
		checkCommon(t, r)
		return r
	}
	del := func(t *testing.T, base string, r response) {
		t.Helper()
		if d := send(t, nil, http.MethodDelete, base+r.header.Get("Location"), nil, ""); d.status != http.StatusOK {
			t.Errorf("DELETE: %d %s", d.status, d.body)
		}
	}
	for _, c := range []struct {
		name  string
		tweak func(*config.Config)
		want  int
	}{
		{"per address", func(c *config.Config) { c.Limits.MaxSessionsPerIP = 2; c.Limits.PerIPExempt = nil }, http.StatusTooManyRequests},
		{"per server", func(c *config.Config) { c.Limits.MaxSessions = 2 }, http.StatusServiceUnavailable},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startEdgeServer(t, c.tweak)
			// Sessions that never connect hold their place as well.
			a := post(t, srv.base, "/whip/a", whipOffer)
			b := post(t, srv.base, "/whip/b", whipOffer)
			if a.status != http.StatusCreated || b.status != http.StatusCreated {
				t.Fatalf("first two sessions: %d, %d", a.status, b.status)
			}
			if r := post(t, srv.base, "/whip/c", whipOffer); r.status != c.want {
				t.Fatalf("third session: %d, want %d (%s)", r.status, c.want, r.body)
			}
			del(t, srv.base, a)
			srv.waitSessions(t, 1, 5*time.Second)
			r := post(t, srv.base, "/whip/c", whipOffer)
			if r.status != http.StatusCreated {
				t.Fatalf("after a DELETE: %d, want 201 (%s)", r.status, r.body)
			}
			del(t, srv.base, r)
			del(t, srv.base, b)
		})
	}

	t.Run("viewers per stream", func(t *testing.T) {
		srv := startEdgeServer(t, func(c *config.Config) { c.Limits.MaxViewersPerStream = 1 })
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		pub, err := client.Publish(ctx, srv.base+"/whip/s", client.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer pub.Close()
		clip := loadClip(t)
		feedCtx, stop := context.WithCancel(ctx)
		fed := looseFeed(feedCtx, pub, clip)
		defer func() { stop(); <-fed }()
		v, err := client.View(ctx, srv.base+"/whep/s", client.ViewOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		if r := post(t, srv.base, "/whep/s", whepOffer); r.status != http.StatusServiceUnavailable {
			t.Fatalf("second viewer: %d, want 503 (%s)", r.status, r.body)
		}
		if err := v.Close(); err != nil {
			t.Error(err)
		}
		srv.waitSessions(t, 1, 5*time.Second)
		r := post(t, srv.base, "/whep/s", whepOffer)
		if r.status != http.StatusCreated {
			t.Fatalf("viewer after the first left: %d, want 201 (%s)", r.status, r.body)
		}
		del(t, srv.base, r)
	})

	t.Run("second publisher", func(t *testing.T) {
		srv := startEdgeServer(t, nil)
		// Still connecting: the first publisher's PeerConnection is gone.
		first := post(t, srv.base, "/whip/s", whipOffer)
		if first.status != http.StatusCreated {
			t.Fatalf("first publisher: %d", first.status)
		}
		if r := post(t, srv.base, "/whip/s", whipOffer); r.status != http.StatusConflict {
			t.Errorf("second publisher while the first connects: %d, want 409 (%s)", r.status, r.body)
		}
		del(t, srv.base, first)
		srv.waitSessions(t, 0, 5*time.Second)
		// Connected.
		pub, err := client.Publish(t.Context(), srv.base+"/whip/s", client.PublishOptions{})
		if err != nil {
			t.Fatalf("publisher after the first left: %v", err)
		}
		defer pub.Close()
		if r := post(t, srv.base, "/whip/s", whipOffer); r.status != http.StatusConflict {
			t.Errorf("second publisher while the first is connected: %d, want 409 (%s)", r.status, r.body)
		}
		select {
		case <-pub.Done():
			t.Error("the first publisher ended")
		default:
		}
	})
}

// testTakeover checks stream.publisher_takeover: a second publisher gets
// 201 and the first one's session ends, but a refused offer ends nothing.
func testTakeover(t *testing.T) {
	srv := startEdgeServer(t, func(c *config.Config) { c.Stream.PublisherTakeover = true })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	old, err := client.Publish(ctx, srv.base+"/whip/s", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	// An offer refused as malformed takes nothing over.
	r := send(t, nil, http.MethodPost, srv.base+"/whip/s", map[string]string{"Content-Type": sdpType}, "v=0\r\nnot an offer\r\n")
	if r.status != http.StatusBadRequest {
		t.Errorf("malformed offer: %d, want 400", r.status)
	}
	if n := srv.Sessions(); n != 1 {
		t.Fatalf("a malformed offer ended the live publisher (%d sessions left)", n)
	}
	select {
	case <-old.Done():
		t.Fatal("a malformed offer ended the live publisher")
	default:
	}
	taker, err := client.Publish(ctx, srv.base+"/whip/s", client.PublishOptions{})
	if err != nil {
		t.Fatalf("second publisher with takeover: %v", err)
	}
	defer taker.Close()
	waitDone(t, "the publisher taken over", old.Done(), 10*time.Second)
	select {
	case <-taker.Done():
		t.Fatal("the new publisher ended")
	default:
	}
	srv.waitSessions(t, 1, 5*time.Second)
	// The stream is the new publisher's: a viewer gets its media.
	clip := loadClip(t)
	feedCtx, stop := context.WithCancel(ctx)
	fed := looseFeed(feedCtx, taker, clip)
	defer func() { stop(); <-fed }()
	v, err := client.View(ctx, srv.base+"/whep/s", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 5, 10*time.Second); got < 5 {
		t.Errorf("viewer of the new publisher: %d access units", got)
	}
	if err := old.Close(); err != nil && client.StatusOf(err) != http.StatusNotFound {
		t.Errorf("old publisher's DELETE: %v, want success or 404", err)
	}
}

// testHTTPS serves the API over TLS with a self-signed certificate: a
// client trusting it publishes and views; plain HTTP and a client that does
// not trust it get nowhere. ICE servers without ice_servers_on_options
// appear on the 201 only.
func testHTTPS(t *testing.T) {
	certFile, keyFile, hc := selfSigned(t)
	srv := startEdgeServer(t, func(c *config.Config) {
		c.HTTP.TLSCert, c.HTTP.TLSKey = certFile, keyFile
		c.HTTP.ICEServers = conformanceICEServers
	})
	if !strings.HasPrefix(srv.base, "https://") {
		t.Fatalf("base %s", srv.base)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	if r := send(t, hc, http.MethodOptions, srv.base+"/whip/tls", nil, ""); r.status != http.StatusNoContent || len(r.header.Values("Link")) != 0 {
		t.Errorf("OPTIONS over TLS: %d, Link %q (want 204, none)", r.status, r.header.Values("Link"))
	}
	pub, err := client.Publish(ctx, srv.base+"/whip/tls", client.PublishOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	if !strings.HasPrefix(pub.Location(), "https://") {
		t.Errorf("Location %s", pub.Location())
	}
	clip := loadClip(t)
	feedCtx, stop := context.WithCancel(ctx)
	fed := looseFeed(feedCtx, pub, clip)
	defer func() { stop(); <-fed }()
	r := send(t, hc, http.MethodPost, srv.base+"/whep/tls", map[string]string{"Content-Type": sdpType}, rawOffer(t, false))
	if r.status != http.StatusCreated {
		t.Fatalf("WHEP POST over TLS: %d %s", r.status, r.body)
	}
	checkCreated(t, r, "whep", "tls", true)
	if d := send(t, hc, http.MethodDelete, srv.base+r.header.Get("Location"), nil, ""); d.status != http.StatusOK {
		t.Errorf("DELETE over TLS: %d", d.status)
	}
	v, err := client.View(ctx, srv.base+"/whep/tls", client.ViewOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 5, 10*time.Second); got < 5 {
		t.Errorf("viewer over HTTPS signalling: %d access units", got)
	}

	plain := "http://" + strings.TrimPrefix(srv.base, "https://")
	if r := send(t, nil, http.MethodGet, plain+"/healthz", nil, ""); r.status != http.StatusBadRequest {
		t.Errorf("plain HTTP to the TLS port: %d, want 400", r.status)
	}
	untrusting := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := untrusting.Do(req); err == nil {
		resp.Body.Close()
		t.Error("a client that does not trust the certificate got an answer")
	}
	if err := v.Close(); err != nil {
		t.Error(err)
	}
	if err := pub.Close(); err != nil {
		t.Error(err)
	}
}
