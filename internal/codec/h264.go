package codec

// H264 NAL unit types (RFC 6184 §5.2, ITU-T H.264 Table 7-1).
const (
	h264NALIDR  = 5
	h264STAPA   = 24
	h264FUA     = 28
	h264NALMask = 0x1f
)

// H264Keyframe reports whether an H264 RTP payload (RFC 6184) carries an IDR
// slice: a single IDR NAL unit, a STAP-A holding one, or the first fragment
// of an FU-A IDR.
func H264Keyframe(p []byte) bool {
	if len(p) == 0 {
		return false
	}
	switch t := p[0] & h264NALMask; t {
	case h264STAPA:
		// RFC 6184 §5.7.1: 16-bit size, then the NAL unit, repeated.
		for off := 1; off+2 < len(p); {
			size := int(p[off])<<8 | int(p[off+1])
			off += 2
			if size == 0 || off+size > len(p) {
				return false
			}
			if p[off]&h264NALMask == h264NALIDR {
				return true
			}
			off += size
		}
		return false
	case h264FUA:
		// RFC 6184 §5.8: FU header has S bit 0x80 and the original type.
		return len(p) > 1 && p[1]&0x80 != 0 && p[1]&h264NALMask == h264NALIDR
	default:
		return t == h264NALIDR
	}
}
