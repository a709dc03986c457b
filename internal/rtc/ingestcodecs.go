package rtc

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/media"
)

// ErrNoCodec means a media section of a publisher's offer has no codec
// sluice can serve; the error names the section and what it offered.
var ErrNoCodec = errors.New("no codec sluice can serve")

// VideoCodecs are the video codecs a publisher may send, as
// webrtc.video_codecs names them; AudioCodecs the audio ones.
var (
	VideoCodecs = []string{"H264", "H265", "VP8", "VP9", "AV1"}
	AudioCodecs = []string{"opus", "PCMU", "PCMA"}
)

// OfferedFormat is one payload format of an SDP media section: its
// payload type, rtpmap (encoding name, clock rate, channels) and fmtp.
type OfferedFormat struct {
	PT        uint8
	Name      string
	ClockRate uint32
	Channels  uint16
	Fmtp      string
}

// Formats lists a media section's payload formats in the order of its
// m= line; those without an rtpmap (or with a payload type out of range)
// are left out.
func Formats(m *sdp.MediaDescription) []OfferedFormat {
	rtpmap := map[string]string{}
	fmtp := map[string]string{}
	for _, a := range m.Attributes {
		pt, rest, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		switch a.Key {
		case "rtpmap":
			rtpmap[pt] = strings.TrimSpace(rest)
		case "fmtp":
			fmtp[pt] = strings.TrimSpace(rest)
		}
	}
	var out []OfferedFormat
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil || rtpmap[f] == "" {
			continue
		}
		parts := strings.Split(rtpmap[f], "/")
		o := OfferedFormat{PT: uint8(pt), Name: parts[0], Fmtp: fmtp[f]}
		if len(parts) > 1 {
			r, _ := strconv.ParseUint(parts[1], 10, 32)
			o.ClockRate = uint32(r)
		}
		if len(parts) > 2 {
			c, _ := strconv.ParseUint(parts[2], 10, 16)
			o.Channels = uint16(c)
		}
		out = append(out, o)
	}
	return out
}

func (f OfferedFormat) String() string {
	s := f.Name
	p := media.ParseFmtp(f.Fmtp)
	for _, k := range []string{"profile-level-id", "packetization-mode", "profile-id", "profile"} {
		if v, ok := p[k]; ok {
			s += " " + k + "=" + v
		}
	}
	return s
}

// servable reports whether sluice can take format f of the given kind from
// a publisher: the codecs the hub relays, with the
// parameters pion binds them by (an H264 format needs packetization-mode
// 0 or 1 and a profile-level-id of a known profile, RFC 6184 §8.1).
func servable(kind string, f OfferedFormat) bool {
	name := strings.ToUpper(f.Name)
	p := media.ParseFmtp(f.Fmtp)
	switch kind {
	case "audio":
		switch name {
		case "OPUS":
			return f.ClockRate == 48000 && f.Channels == 2
		case "PCMU", "PCMA":
			return f.ClockRate == 8000 && f.Channels <= 1
		}
		return false
	case "video":
		if f.ClockRate != 90000 {
			return false
		}
		switch name {
		case "H264":
			pm, ok := p["packetization-mode"]
			plid, okP := p["profile-level-id"]
			return ok && (pm == "0" || pm == "1") && okP && media.ParseH264Profile(strings.TrimSpace(plid)) != media.H264ProfileNone
		case "H265", "VP8":
			return true
		case "VP9":
			v, ok := p["profile-id"]
			return !ok || v == "0" || v == "1" || v == "2" || v == "3"
		case "AV1":
			v, ok := p["profile"]
			return !ok || v == "0" || v == "1" || v == "2"
		}
	}
	return false
}

// SelectIngest picks the codec a publisher sends in each audio and video
// section of its offer that sends media: the first format in the
// publisher's own order that sluice can serve or, with video set
// (webrtc.video_codecs), the first of those names, in that order, that the
// section offers. It trims each such section to the chosen format and its
// RTX format (RFC 4588), so that the answer holds exactly what the
// publisher will send, and returns those formats, for the publisher's
// MediaEngine (NewPublisherPCFor). A section with nothing to choose is
// ErrNoCodec, before any answer is made: an answer without a codec is one
// the client rejects.
func SelectIngest(offer *sdp.SessionDescription, video []string) ([]webrtc.RTPCodecParameters, error) {
	var out []webrtc.RTPCodecParameters
	for i, m := range offer.MediaDescriptions {
		kind := m.MediaName.Media
		if (kind != "audio" && kind != "video") || !sends(m) {
			continue
		}
		formats := Formats(m)
		chosen, ok := choose(kind, formats, video)
		if !ok {
			var names []string
			for _, f := range formats {
				names = append(names, f.String())
			}
			takes := strings.Join(AudioCodecs, ", ")
			if kind == "video" {
				takes = strings.Join(VideoCodecs, ", ")
				if video != nil {
					takes = strings.Join(video, ", ") + " (webrtc.video_codecs)"
				}
			}
			mid, _ := m.Attribute("mid")
			return nil, fmt.Errorf("%w: %s section %d (mid %q) offers [%s]; sluice takes %s", ErrNoCodec,
				kind, i, mid, strings.Join(names, ", "), takes)
		}
		keep := map[uint8]bool{chosen.PT: true}
		p := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: kind + "/" + chosen.Name, ClockRate: chosen.ClockRate, Channels: chosen.Channels,
				SDPFmtpLine: chosen.Fmtp,
			},
			PayloadType: webrtc.PayloadType(chosen.PT),
		}
		if kind == "video" {
			p.RTCPFeedback = videoFeedback
		}
		out = append(out, p)
		if kind == "video" {
			apt := strconv.Itoa(int(chosen.PT))
			for _, f := range formats {
				if strings.EqualFold(f.Name, "rtx") && media.ParseFmtp(f.Fmtp)["apt"] == apt {
					keep[f.PT] = true
					out = append(out, webrtc.RTPCodecParameters{
						RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: f.ClockRate, SDPFmtpLine: "apt=" + apt},
						PayloadType:        webrtc.PayloadType(f.PT),
					})
					break
				}
			}
		}
		KeepFormats(m, func(pt uint8) bool { return keep[pt] })
	}
	return out, nil
}

// choose picks a section's format (see SelectIngest).
func choose(kind string, formats []OfferedFormat, video []string) (OfferedFormat, bool) {
	if kind == "video" && video != nil {
		for _, name := range video {
			for _, f := range formats {
				if strings.EqualFold(f.Name, name) && servable(kind, f) {
					return f, true
				}
			}
		}
		return OfferedFormat{}, false
	}
	for _, f := range formats {
		if servable(kind, f) {
			return f, true
		}
	}
	return OfferedFormat{}, false
}

// sends reports whether an offer's section sends media: not rejected
// (port 0) and neither recvonly nor inactive.
func sends(m *sdp.MediaDescription) bool {
	if !Active(m) {
		return false
	}
	for _, a := range m.Attributes {
		if a.Key == "recvonly" || a.Key == "inactive" {
			return false
		}
	}
	return true
}

// Active reports whether an offer's media section is in use: a port other
// than 0, or port 0 with a=bundle-only (RFC 8843 §6: a max-bundle offerer,
// as GStreamer's webrtcbin, puts every section but the first so).
func Active(m *sdp.MediaDescription) bool {
	if m.MediaName.Port.Value != 0 {
		return true
	}
	_, ok := m.Attribute("bundle-only")
	return ok
}

// KeepFormats drops from a media section the payload formats keep refuses,
// from its m= line and with their rtpmap, fmtp and rtcp-fb lines.
func KeepFormats(m *sdp.MediaDescription, keep func(pt uint8) bool) {
	kept := func(s string) bool {
		pt, err := strconv.ParseUint(s, 10, 7)
		return err == nil && keep(uint8(pt))
	}
	m.MediaName.Formats = slices.DeleteFunc(m.MediaName.Formats, func(f string) bool { return !kept(f) })
	m.Attributes = slices.DeleteFunc(m.Attributes, func(a sdp.Attribute) bool {
		if a.Key != "rtpmap" && a.Key != "fmtp" && a.Key != "rtcp-fb" {
			return false
		}
		pt, _, _ := strings.Cut(a.Value, " ")
		return pt != "*" && !kept(pt)
	})
}

// NewPublisherPCFor is NewPublisherPC for an offer already answered by
// SelectIngest: the MediaEngine holds exactly the chosen codecs.
func (e *Engine) NewPublisherPCFor(obs RTCPObserver, codecs []webrtc.RTPCodecParameters) (*webrtc.PeerConnection, error) {
	return e.newPublisherPC(obs, codecs, e.settings)
}
