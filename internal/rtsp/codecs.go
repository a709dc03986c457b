package rtsp

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/sdp/v3"

	"github.com/sluice-media/sluice/internal/media"
)

// ErrCodec means a track's codec is one sluice does not carry over RTSP.
var ErrCodec = errors.New("unsupported codec")

// AcceptedCodecs names what an RTSP publisher or camera may send, for
// error messages.
const AcceptedCodecs = "H264, H265, VP8, VP9, AV1, AAC (MPEG4-GENERIC), Opus, PCMU, PCMA"

// MimeAAC is the hub's MIME type of AAC in RFC 3640 (MPEG4-GENERIC) RTP.
const MimeAAC = "audio/MPEG4-GENERIC"

// codecOf maps a gortsplib format to the hub's codec: the MIME type from
// the rtpmap encoding name (in pion's spelling), the clock rate, the
// channels and the fmtp as the format writes it (keys sorted).
func codecOf(f format.Format) (media.Codec, error) {
	var c media.Codec
	switch f := f.(type) {
	case *format.H264:
		if f.PacketizationMode == 0 {
			// gortsplib's server refuses to serve mode 0 (single NAL units
			// only), and a hub track must be readable by every edge.
			return c, fmt.Errorf("%w: H264 with packetization-mode 0", ErrCodec)
		}
		c.MimeType = "video/H264"
	case *format.H265:
		c.MimeType = "video/H265"
	case *format.VP8:
		c.MimeType = "video/VP8"
	case *format.VP9:
		c.MimeType = "video/VP9" // RFC 9628
	case *format.AV1:
		c.MimeType = "video/AV1" // the AV1 RTP payload format (AOM)
	case *format.Opus:
		c.MimeType = "audio/opus"
		c.Channels = 2 // RFC 7587 §7: opus/48000/2 whatever the stream carries
	case *format.G711:
		c.MimeType = "audio/PCMA"
		if f.MULaw {
			c.MimeType = "audio/PCMU"
		}
		c.Channels = uint16(f.ChannelCount)
	case *format.MPEG4Audio:
		c.MimeType = MimeAAC
		if f.Config != nil {
			c.Channels = uint16(f.Config.ChannelCount)
		}
	default:
		return c, fmt.Errorf("%w: %s (accepted: %s)", ErrCodec, f.RTPMap(), AcceptedCodecs)
	}
	c.ClockRate = uint32(f.ClockRate())
	c.Fmtp = joinFmtp(f.FMTP())
	return c, nil
}

// joinFmtp writes fmtp parameters as "k=v;k2=v2", keys sorted so that the
// same format always gives the same string.
func joinFmtp(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}

// formatOf maps a hub codec to a gortsplib format with payload type pt
// (G.711 at 8 kHz mono takes its static type, 0 or 8, instead): the
// rtpmap and fmtp go through gortsplib's own SDP parser, so every codec
// it knows is described as it would describe it.
func formatOf(c media.Codec, pt uint8) (format.Format, error) {
	name := c.Name()
	switch {
	case strings.EqualFold(name, "PCMU") && c.ClockRate == 8000 && c.Channels <= 1:
		pt = 0
	case strings.EqualFold(name, "PCMA") && c.ClockRate == 8000 && c.Channels <= 1:
		pt = 8
	}
	rtpmap := fmt.Sprintf("%d %s/%d", pt, name, c.ClockRate)
	if c.Channels > 1 || strings.EqualFold(name, "opus") {
		rtpmap += "/" + strconv.Itoa(max(int(c.Channels), 2))
	}
	kind := "video"
	if c.Kind() == media.KindAudio {
		kind = "audio"
	}
	ptStr := strconv.Itoa(int(pt))
	md := &sdp.MediaDescription{
		MediaName:  sdp.MediaName{Media: kind, Protos: []string{"RTP", "AVP"}, Formats: []string{ptStr}},
		Attributes: []sdp.Attribute{{Key: "rtpmap", Value: rtpmap}},
	}
	if c.Fmtp != "" {
		md.Attributes = append(md.Attributes, sdp.Attribute{Key: "fmtp", Value: ptStr + " " + c.Fmtp})
	}
	f, err := format.Unmarshal(md, ptStr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCodec, c, err)
	}
	if _, ok := f.(*format.Generic); ok {
		return nil, fmt.Errorf("%w: %s", ErrCodec, c)
	}
	if _, err := codecOf(f); err != nil {
		return nil, err
	}
	return f, nil
}

// describe builds the session description of the hub tracks that RTSP can
// carry; take[i] is the hub track of media i. Tracks it cannot carry are
// left out (and named in skipped).
func describe(tracks []trackCodec) (desc *description.Session, take []int, skipped []string) {
	desc = &description.Session{Title: "sluice"}
	for _, t := range tracks {
		f, err := formatOf(t.codec, uint8(96+len(desc.Medias)))
		if err != nil {
			skipped = append(skipped, t.codec.String())
			continue
		}
		typ := description.MediaTypeVideo
		if t.codec.Kind() == media.KindAudio {
			typ = description.MediaTypeAudio
		}
		desc.Medias = append(desc.Medias, &description.Media{Type: typ, Formats: []format.Format{f}})
		take = append(take, t.index)
	}
	return desc, take, skipped
}

// trackCodec is a hub track's index and codec.
type trackCodec struct {
	index int
	codec media.Codec
}
