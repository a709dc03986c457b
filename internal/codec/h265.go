package codec

// H265 RTP payload types (RFC 7798 §4.4) and IRAP NAL range (H.265 Table 7-1).
const (
	h265AP       = 48
	h265FU       = 49
	h265IRAPLow  = 16 // BLA_W_LP
	h265IRAPHigh = 23 // up to RSV_IRAP_VCL23
)

func h265Type(b byte) byte { return (b >> 1) & 0x3f }

func h265IRAP(t byte) bool { return t >= h265IRAPLow && t <= h265IRAPHigh }

// H265Keyframe reports whether an H265 RTP payload (RFC 7798) carries an
// IRAP picture (IDR, CRA or BLA): a single NAL unit, an aggregation packet
// holding one, or the first fragment of one. DONL fields are not supported
// (sprop-max-don-diff is never negotiated by sluice).
func H265Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	switch t := h265Type(p[0]); t {
	case h265AP:
		// RFC 7798 §4.4.2: 2-byte payload header, then (16-bit size, NAL)*.
		for off := 2; off+2 < len(p); {
			size := int(p[off])<<8 | int(p[off+1])
			off += 2
			if size < 2 || off+size > len(p) {
				return false
			}
			if h265IRAP(h265Type(p[off])) {
				return true
			}
			off += size
		}
		return false
	case h265FU:
		// RFC 7798 §4.4.3: FU header after the 2-byte payload header.
		return len(p) > 2 && p[2]&0x80 != 0 && h265IRAP(p[2]&0x3f)
	default:
		return h265IRAP(t)
	}
}
