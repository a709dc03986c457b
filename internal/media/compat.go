package media

import "strings"

// Compatible reports whether a receiver that negotiated codec b can decode
// what a sender sends as codec a: same encoding and clock rate and, for
// H264, the same packetization-mode and a profile b's decoder takes (by
// meaning, not by bytes: "42c01e" and "42e01f" are both Constrained
// Baseline, which a Main or High decoder also takes; see H264Profile); for
// VP9 and AV1 the same profile (draft-ietf-payload-vp9 "profile-id", the
// AV1 RTP spec's "profile", 0 when absent), as pion matches them.
func Compatible(a, b Codec) bool {
	if !strings.EqualFold(a.Name(), b.Name()) || a.ClockRate != b.ClockRate {
		return false
	}
	if a.Fmtp == b.Fmtp {
		return true
	}
	pa, pb := ParseFmtp(a.Fmtp), ParseFmtp(b.Fmtp)
	param := func(f map[string]string, k, def string) string {
		if v, ok := f[k]; ok {
			return strings.TrimSpace(v)
		}
		return def
	}
	switch strings.ToUpper(a.Name()) {
	case "H264":
		// pion (which binds the tracks) wants packetization-mode on both sides.
		ma, okA := pa["packetization-mode"]
		mb, okB := pb["packetization-mode"]
		if !okA || !okB || ma != mb {
			return false
		}
		return ParseH264Profile(param(pb, "profile-level-id", "")).Decodes(ParseH264Profile(param(pa, "profile-level-id", "")))
	case "VP9":
		return param(pa, "profile-id", "0") == param(pb, "profile-id", "0")
	case "AV1":
		return param(pa, "profile", "0") == param(pb, "profile", "0")
	}
	return true
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
