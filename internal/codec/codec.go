// Package codec inspects RTP payloads of the codecs sluice relays (H264,
// H265, VP8, VP9, AV1, Opus, G.711) without depacketizing them: enough to find keyframes on
// the ingest path at a few nanoseconds per packet.
package codec

import (
	"strings"

	"github.com/sluice-media/sluice/internal/media"
)

// KeyframeFunc reports whether an RTP payload carries (the start of) a
// random access point.
type KeyframeFunc func(payload []byte) bool

// KeyframeDetector returns the detector for a video codec, or nil for codecs
// whose every packet is decodable on its own (audio).
func KeyframeDetector(c media.Codec) KeyframeFunc {
	switch strings.ToUpper(c.Name()) {
	case "H264":
		return H264Keyframe
	case "H265", "HEVC":
		return H265Keyframe
	case "VP8":
		return VP8Keyframe
	case "VP9":
		return VP9Keyframe
	case "AV1":
		return AV1Keyframe
	}
	return nil
}
