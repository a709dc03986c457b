package media

import "strings"

// Compatible reports whether a receiver that negotiated codec b can decode
// what a sender sends as codec a: same encoding and clock rate and, for
// H264, the same packetization-mode and the same profile_idc and
// profile-iop bytes of profile-level-id (RFC 6184 §8.1, as pion matches it),
// so a constrained-baseline-only decoder never gets High profile.
func Compatible(a, b Codec) bool {
	if !strings.EqualFold(a.Name(), b.Name()) || a.ClockRate != b.ClockRate {
		return false
	}
	if !strings.EqualFold(a.Name(), "H264") || a.Fmtp == b.Fmtp {
		return true
	}
	pa, pb := ParseFmtp(a.Fmtp), ParseFmtp(b.Fmtp)
	// pion (which binds the tracks) wants packetization-mode on both sides.
	ma, okA := pa["packetization-mode"]
	mb, okB := pb["packetization-mode"]
	if !okA || !okB || ma != mb {
		return false
	}
	la, lb := pa["profile-level-id"], pb["profile-level-id"]
	if la == "" || lb == "" {
		return la == lb
	}
	return len(la) >= 4 && len(lb) >= 4 && strings.EqualFold(la[:4], lb[:4])
}

// ParseFmtp splits an a=fmtp parameter list ("k=v;k2=v2") into a map with
// lower-case keys.
func ParseFmtp(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			out[strings.ToLower(k)] = v
		}
	}
	return out
}
