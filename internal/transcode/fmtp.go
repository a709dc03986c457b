package transcode

import "strings"

// ChannelsFromFmtp returns the channel count to transcode an Opus track
// to, from its SDP fmtp: 2 where "stereo=1" or "sprop-stereo=1" says that
// stereo is wanted or sent (RFC 7587 §6.1), else 1. Opus always signals
// two channels in its rtpmap (RFC 7587 §7); only these parameters tell
// stereo from mono.
func ChannelsFromFmtp(fmtp string) int {
	for _, p := range strings.Split(fmtp, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if (k == "stereo" || k == "sprop-stereo") && strings.TrimSpace(v) == "1" {
			return 2
		}
	}
	return 1
}
