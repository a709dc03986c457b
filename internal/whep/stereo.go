package whep

import (
	"strings"

	"github.com/sluice-media/sluice/internal/media"
)

// withOpusStereo passes a stereo publisher's signalling on to a viewer:
// where the publisher's Opus fmtp has stereo=1 or sprop-stereo=1, the
// answer's Opus fmtp gets both. pion answers with the viewer's own fmtp,
// which a browser's offer gives without them; RFC 7587 §7.1: sprop-stereo
// says that the sender (sluice, relaying the publisher) may send stereo,
// and players such as browsers decode to stereo only when they see it.
// Opus is two-channel in every rtpmap (RFC 7587 §7), so only these
// parameters tell stereo from mono.
func withOpusStereo(answer string, codecs []media.Codec) string {
	stereo := false
	for _, c := range codecs {
		f := media.ParseFmtp(c.Fmtp)
		if strings.EqualFold(c.MimeType, "audio/opus") && (f["stereo"] == "1" || f["sprop-stereo"] == "1") {
			stereo = true
		}
	}
	if !stereo {
		return answer
	}
	lines := strings.SplitAfter(answer, "\n")
	opus := map[string]bool{} // payload types
	for _, l := range lines {
		if pt, rest, ok := strings.Cut(strings.TrimSpace(strings.TrimPrefix(l, "a=rtpmap:")), " "); ok && strings.HasPrefix(l, "a=rtpmap:") &&
			strings.HasPrefix(strings.ToLower(rest), "opus/") {
			opus[pt] = true
		}
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if body, ok := strings.CutPrefix(l, "a=fmtp:"); ok {
			pt, params, _ := strings.Cut(strings.TrimRight(body, "\r\n"), " ")
			if opus[pt] {
				f := media.ParseFmtp(params)
				for _, k := range []string{"stereo", "sprop-stereo"} {
					if _, set := f[k]; !set {
						params += ";" + k + "=1"
					}
				}
				l = "a=fmtp:" + pt + " " + strings.TrimPrefix(params, ";") + l[len(strings.TrimRight(l, "\r\n")):]
				delete(opus, pt) // done
			}
		}
		out = append(out, l)
	}
	if len(opus) > 0 { // an Opus payload type without fmtp: add one
		var with []string
		for _, l := range out {
			with = append(with, l)
			if pt, _, ok := strings.Cut(strings.TrimPrefix(l, "a=rtpmap:"), " "); ok && strings.HasPrefix(l, "a=rtpmap:") && opus[pt] {
				with = append(with, "a=fmtp:"+pt+" stereo=1;sprop-stereo=1"+l[len(strings.TrimRight(l, "\r\n")):])
			}
		}
		out = with
	}
	return strings.Join(out, "")
}
