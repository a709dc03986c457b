package frame

import (
	"bytes"
	"strings"

	"github.com/sluice-media/sluice/internal/media"
)

// InfoSniffer finds what a video track's parameter sets say (resolution,
// profile, level) by looking at single RTP payloads on the ingest path,
// without depacketizing: H264 and H265 SPS sent whole (single NAL unit or
// aggregation packet, as every common sender does), VP8 key frame
// headers and VP9 key frame uncompressed headers (in the first packet of
// the frame). A payload costs a byte compare unless the SPS changed.
type InfoSniffer struct {
	codec string
	last  []byte
	info  media.VideoInfo
}

// NewInfoSniffer returns a sniffer for a video codec, or nil for codecs it
// does not know (audio).
func NewInfoSniffer(c media.Codec) *InfoSniffer {
	switch n := strings.ToUpper(c.Name()); n {
	case "H264", "H265", "VP8", "VP9":
		return &InfoSniffer{codec: n}
	}
	return nil
}

// Sniff looks at one payload; it returns the video info when the payload
// carries parameters that differ from the last ones seen.
func (s *InfoSniffer) Sniff(p []byte) (media.VideoInfo, bool) {
	var params []byte
	switch s.codec {
	case "H264":
		params = h264FindSPS(p)
	case "H265":
		params = h265FindSPS(p)
	case "VP8":
		if start, off, ok := vp8Descriptor(p); ok && start && p[off]&0x01 == 0 && len(p) >= off+10 {
			params = p[off : off+10]
		}
	case "VP9":
		params = vp9KeyHeader(p)
	}
	if params == nil || bytes.Equal(params, s.last) {
		return media.VideoInfo{}, false
	}
	s.last = append(s.last[:0], params...)
	var info media.VideoInfo
	var err error
	ok := true
	switch s.codec {
	case "H264":
		info, err = h264Codec{}.videoInfo(params)
	case "H265":
		info, err = h265Codec{}.videoInfo(params)
	case "VP8":
		info, ok = vp8Info(params)
	case "VP9":
		info, ok = vp9Info(params)
	}
	if err != nil || !ok || info == s.info {
		return media.VideoInfo{}, false
	}
	s.info = info
	return info, true
}

// h264FindSPS returns the SPS in a single NAL unit packet or STAP-A.
func h264FindSPS(p []byte) []byte {
	if len(p) == 0 {
		return nil
	}
	switch p[0] & 0x1f {
	case h264SPS:
		return p
	case h264STAPA:
		return findAggregated(p[1:], func(n []byte) bool { return n[0]&0x1f == h264SPS })
	}
	return nil
}

// h265FindSPS returns the SPS in a single NAL unit packet or AP.
func h265FindSPS(p []byte) []byte {
	if len(p) < 2 {
		return nil
	}
	switch h265Type(p[0]) {
	case h265SPS:
		return p
	case h265AP:
		return findAggregated(p[2:], func(n []byte) bool { return h265Type(n[0]) == h265SPS })
	}
	return nil
}

func findAggregated(body []byte, match func([]byte) bool) []byte {
	for len(body) >= 2 {
		size := int(body[0])<<8 | int(body[1])
		body = body[2:]
		if size == 0 || size > len(body) {
			return nil
		}
		if match(body[:size]) {
			return body[:size]
		}
		body = body[size:]
	}
	return nil
}
