package httpapi

import "net/netip"

// Reserve takes a place for a session of another edge (RTMP, SRT) from ip
// under the same limits as WHIP and WHEP (limits.max_sessions,
// limits.max_sessions_per_ip), or says which one refuses it; release
// gives the place back when the session ends.
func (a *API) Reserve(ip netip.Addr) (release func(), err error) {
	return a.sessions.reserve(ip)
}
