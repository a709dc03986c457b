package codec

// VP8Keyframe reports whether a VP8 RTP payload (RFC 7741) is the first
// packet of a key frame: S=1, partition index 0 and the P bit of the VP8
// frame header clear (RFC 7741 §4.3, RFC 6386 §9.1).
func VP8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	if b0&0x10 == 0 || b0&0x07 != 0 { // S bit, PID
		return false
	}
	off := 1
	if b0&0x80 != 0 { // X: extended control bits
		if len(p) <= off {
			return false
		}
		x := p[off]
		off++
		if x&0x80 != 0 { // I: picture ID, 7 or 15 bits
			if len(p) <= off {
				return false
			}
			if p[off]&0x80 != 0 {
				off++
			}
			off++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			off++
		}
		if x&0x30 != 0 { // T or K: TID/KEYIDX
			off++
		}
	}
	return len(p) > off && p[off]&0x01 == 0
}
