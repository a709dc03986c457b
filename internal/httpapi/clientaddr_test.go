package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestForwardedClient(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	withLAN := append([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, loopback...)
	for _, c := range []struct {
		name    string
		remote  string
		trusted []netip.Prefix
		headers map[string][]string
		want    string // "" = RemoteAddr stays
	}{
		{"no header", "127.0.0.1:5000", loopback, nil, ""},
		{"xff from loopback proxy", "127.0.0.1:5000", loopback, map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, "203.0.113.7"},
		{"spoofed xff from an untrusted client", "198.51.100.9:5000", loopback, map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, ""},
		{"no trusted proxies", "127.0.0.1:5000", nil, map[string][]string{"X-Forwarded-For": {"203.0.113.7"}}, ""},
		{"client prepends a spoof, nginx appends the real one", "127.0.0.1:5000", loopback,
			map[string][]string{"X-Forwarded-For": {"192.0.2.66, 203.0.113.7"}}, "203.0.113.7"},
		{"two trusted proxies", "127.0.0.1:5000", withLAN,
			map[string][]string{"X-Forwarded-For": {"203.0.113.7, 10.1.2.3"}}, "203.0.113.7"},
		{"xff over two header lines", "127.0.0.1:5000", withLAN,
			map[string][]string{"X-Forwarded-For": {"203.0.113.7", "10.1.2.3"}}, "203.0.113.7"},
		{"all hops trusted: the farthest", "127.0.0.1:5000", withLAN,
			map[string][]string{"X-Forwarded-For": {"10.9.9.9, 10.1.2.3"}}, "10.9.9.9"},
		{"garbage hop ends the walk", "127.0.0.1:5000", withLAN,
			map[string][]string{"X-Forwarded-For": {"203.0.113.7, nonsense, 10.1.2.3"}}, "10.1.2.3"},
		{"garbage nearest hop: the proxy stays", "127.0.0.1:5000", loopback,
			map[string][]string{"X-Forwarded-For": {"nonsense"}}, ""},
		{"forwarded", "[::1]:5000", loopback,
			map[string][]string{"Forwarded": {`for=192.0.2.60;proto=http;by=203.0.113.43`}}, "192.0.2.60"},
		{"forwarded ipv6 with port, preferred over xff", "127.0.0.1:5000", loopback,
			map[string][]string{"Forwarded": {`for="[2001:db8:cafe::17]:4711"`}, "X-Forwarded-For": {"203.0.113.7"}}, "2001:db8:cafe::17"},
		{"forwarded chain", "127.0.0.1:5000", withLAN,
			map[string][]string{"Forwarded": {`for=198.51.100.17, for=10.0.0.4;proto=https`}}, "198.51.100.17"},
		{"forwarded unknown", "127.0.0.1:5000", loopback,
			map[string][]string{"Forwarded": {`for=unknown`}}, ""},
		{"forwarded obfuscated behind a trusted hop", "127.0.0.1:5000", withLAN,
			map[string][]string{"Forwarded": {`for=_hidden, for=10.0.0.4`}}, "10.0.0.4"},
		{"ipv4-mapped", "127.0.0.1:5000", loopback, map[string][]string{"X-Forwarded-For": {"::ffff:203.0.113.7"}}, "203.0.113.7"},
	} {
		r := httptest.NewRequest(http.MethodPost, "/whip/a", nil)
		r.RemoteAddr = c.remote
		for k, vs := range c.headers {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		var seen string
		a := &API{cfg: Config{TrustedProxies: c.trusted}}
		a.clientAddr(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r.RemoteAddr })).ServeHTTP(httptest.NewRecorder(), r)
		want := c.want
		if want == "" {
			want = c.remote
		}
		if seen != want {
			t.Errorf("%s: RemoteAddr %q, want %q", c.name, seen, want)
		}
		if c.want != "" && clientIP(&http.Request{RemoteAddr: seen}).String() != c.want {
			t.Errorf("%s: clientIP of %q is %v", c.name, seen, clientIP(&http.Request{RemoteAddr: seen}))
		}
	}
}
