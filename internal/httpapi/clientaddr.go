package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr replaces the request's RemoteAddr with the client's address
// when the request comes from a trusted proxy (Config.TrustedProxies) that
// says who the client is, so that the per-address limit, logs, events,
// webhooks and the auth callback all name the client, not the proxy. From
// anyone else the forwarding headers are ignored: a client could forge
// them to escape the per-address limit. The address from a header has no
// port (the proxy's header does not say it).
func (a *API) clientAddr(next http.Handler) http.Handler {
	if len(a.cfg.TrustedProxies) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := forwardedClient(r, a.cfg.TrustedProxies); ok {
			r2 := *r
			r2.RemoteAddr = c.String()
			r = &r2
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient is the client a trusted proxy names: walking the hops
// of Forwarded (RFC 7239 §5.2 "for=", preferred when present) or else
// X-Forwarded-For from the nearest one back, the first address that is not
// itself a trusted proxy, or the farthest if all are. A hop that is not an
// address (RFC 7239 "unknown", an obfuscated "_name", garbage) ends the
// walk at the hop before it: nothing farther can be believed.
func forwardedClient(r *http.Request, trusted []netip.Prefix) (netip.Addr, bool) {
	peer := clientIP(r)
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return netip.Addr{}, false
	}
	hops := forwardedFor(r.Header.Values("Forwarded"))
	if hops == nil {
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for h := range strings.SplitSeq(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
	}
	client, found := peer, false
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client, found = a, true
		if !inPrefixes(a, trusted) {
			break
		}
	}
	return client, found
}

// forwardedFor lists the for= values of Forwarded headers, one per hop in
// order (RFC 7239 §4: elements separated by commas, pairs by semicolons;
// a hop without for= counts as unknown). nil if there is no header.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			hop := "unknown"
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(k, "for") {
					hop = strings.Trim(strings.TrimSpace(val), `"`)
				}
			}
			out = append(out, hop)
		}
	}
	return out
}

// parseHop reads one hop: an IPv4 or IPv6 address, with an optional port
// ("192.0.2.1:4711", "[2001:db8::1]:4711", "[2001:db8::1]").
func parseHop(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func inPrefixes(a netip.Addr, list []netip.Prefix) bool {
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
