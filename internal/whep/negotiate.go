package whep

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/rtc"
)

// ErrNoCompatibleCodec means the viewer cannot take any published track.
var ErrNoCompatibleCodec = errors.New("no compatible codec")

// offeredCodec is one payload format of an offer's media section.
type offeredCodec struct {
	pt        string
	name      string
	clockRate uint32
	fmtp      string
}

// match picks the published tracks the viewer can receive, each video
// track with the fmtp of the first format of the viewer's section that can
// decode it (so the answer names the viewer's H264 profile, not the
// publisher's bytes). Following pion's
// transceiver reuse, the n-th published track of a kind goes to the n-th
// media section of that kind. A viewer that offers no section of a kind
// simply does not get that kind; one whose section lists no compatible codec
// is refused, since it expects media it cannot decode. The error names what
// was published and what was offered.
//
// A track with derived tracks (hub/derive.go: Opus transcoded from AAC or
// G.711) is one choice among them for its section: the published codec
// where the viewer takes it (PCMA to a viewer offering PCMA), else the
// first derived one it takes. An audio track that could have been
// transcoded but cannot be here (the libraries missing) is left out: the
// viewer gets the video.
func match(tracks []hub.Track, offer *sdp.SessionDescription) ([]hub.Track, error) {
	sections := map[media.Kind][]*sdp.MediaDescription{}
	for _, m := range offer.MediaDescriptions {
		switch m.MediaName.Media {
		case "audio":
			sections[media.KindAudio] = append(sections[media.KindAudio], m)
		case "video":
			sections[media.KindVideo] = append(sections[media.KindVideo], m)
		}
	}
	var out []hub.Track
	var published, offered []string
	used := map[media.Kind]int{}
	for _, t := range tracks {
		if !t.Derived {
			published = append(published, t.Codec.String())
		}
	}
	for _, t := range tracks {
		if t.Derived {
			continue // a choice of its source's section
		}
		k := t.Codec.Kind()
		if used[k] >= len(sections[k]) {
			continue
		}
		m := sections[k][used[k]]
		used[k]++
		if !canReceive(m) {
			continue
		}
		choices := []hub.Track{t}
		for _, d := range tracks {
			if d.Derived && d.Source == t.Index {
				choices = append(choices, d)
			}
		}
		pick, ok := pickCodec(choices, codecsOf(m))
		if !ok && k == media.KindAudio && t.DeriveErr != "" {
			continue // audio left out: see above
		}
		if !ok {
			out = nil // refuse the whole offer: see above
			break
		}
		out = append(out, pick)
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, m := range offer.MediaDescriptions {
		var names []string
		for _, c := range codecsOf(m) {
			names = append(names, c.String())
		}
		offered = append(offered, m.MediaName.Media+" ["+strings.Join(names, ", ")+"]")
	}
	return nil, fmt.Errorf("%w: stream publishes %s; offer has %s", ErrNoCompatibleCodec,
		strings.Join(published, " + "), strings.Join(offered, ", "))
}

// trimOffer drops from each audio and video section of the offer the
// payload formats that no published codec of that kind can serve, with
// their rtpmap, fmtp and rtcp-fb lines; RTX formats of kept ones stay.
// sluice's answer can only hold the publisher's codecs, so the answer is
// the same; but pion matches every offered format against its codecs by
// parsing fmtp lines again and again, and a browser offers 20 to 40
// formats: that matching was a sixth of the server's CPU while viewers
// joined, and pion keeps the parsed offer for the session's life. A
// section with no usable format is left as offered.
func trimOffer(offer *sdp.SessionDescription, tracks []hub.Track) {
	for _, m := range offer.MediaDescriptions {
		var kind media.Kind
		switch m.MediaName.Media {
		case "audio":
			kind = media.KindAudio
		case "video":
			kind = media.KindVideo
		default:
			continue
		}
		codecs := codecsOf(m)
		keep := map[string]bool{}
		for _, c := range codecs {
			for _, t := range tracks {
				if t.Codec.Kind() == kind && compatible(t.Codec, c) {
					keep[c.pt] = true
				}
			}
		}
		if len(keep) == 0 {
			continue
		}
		for _, c := range codecs {
			if strings.EqualFold(c.name, "rtx") && keep[media.ParseFmtp(c.fmtp)["apt"]] {
				keep[c.pt] = true
			}
		}
		formats := m.MediaName.Formats[:0]
		for _, f := range m.MediaName.Formats {
			if keep[f] {
				formats = append(formats, f)
			}
		}
		m.MediaName.Formats = formats
		attrs := m.Attributes[:0]
		for _, a := range m.Attributes {
			if a.Key == "rtpmap" || a.Key == "fmtp" || a.Key == "rtcp-fb" {
				if pt, _, _ := strings.Cut(a.Value, " "); pt != "*" && !keep[pt] {
					continue
				}
			}
			attrs = append(attrs, a)
		}
		m.Attributes = attrs
	}
}

// pickCodec returns the first of choices that one of the offered codecs
// can receive.
func pickCodec(choices []hub.Track, offered []offeredCodec) (hub.Track, bool) {
	for _, t := range choices {
		for _, c := range offered {
			if compatible(t.Codec, c) {
				if t.Codec.Kind() == media.KindVideo {
					// RFC 6184 §8.2.2: the answer keeps the viewer's
					// format (its profile-level-id), which is what pion
					// binds the track to; the publisher's stream is
					// within what that format decodes.
					t.Codec.Fmtp = c.fmtp
				}
				return t, true
			}
		}
	}
	return hub.Track{}, false
}

func canReceive(m *sdp.MediaDescription) bool {
	if !rtc.Active(m) {
		return false
	}
	for _, a := range []string{"sendonly", "inactive"} {
		if _, ok := m.Attribute(a); ok {
			return false
		}
	}
	return true
}

func codecsOf(m *sdp.MediaDescription) []offeredCodec {
	byPT := map[string]*offeredCodec{}
	var order []string
	for _, a := range m.Attributes {
		pt, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		switch a.Key {
		case "rtpmap":
			name, rate, _ := strings.Cut(rest, "/")
			rate, _, _ = strings.Cut(rate, "/")
			r, _ := strconv.ParseUint(rate, 10, 32)
			if byPT[pt] == nil {
				order = append(order, pt)
				byPT[pt] = &offeredCodec{pt: pt}
			}
			byPT[pt].name, byPT[pt].clockRate = name, uint32(r)
		case "fmtp":
			if byPT[pt] == nil {
				order = append(order, pt)
				byPT[pt] = &offeredCodec{pt: pt}
			}
			byPT[pt].fmtp = rest
		}
	}
	out := make([]offeredCodec, 0, len(order))
	for _, pt := range order {
		if c := byPT[pt]; c.name != "" {
			out = append(out, *c)
		}
	}
	return out
}

func (c offeredCodec) String() string {
	s := c.name
	f := media.ParseFmtp(c.fmtp)
	if p, ok := f["profile-level-id"]; ok {
		s += " " + p
	}
	if p, ok := f["packetization-mode"]; ok {
		s += " pm=" + p
	}
	return s
}

// compatible reports whether a viewer that offers c can decode what the
// publisher sends as pub (see media.Compatible).
func compatible(pub media.Codec, c offeredCodec) bool {
	return media.Compatible(pub, media.Codec{MimeType: "x/" + c.name, ClockRate: c.clockRate, Fmtp: c.fmtp})
}
