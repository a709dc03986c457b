package codec

// AV1 RTP aggregation header bits (AV1 RTP payload spec §4.4) and the
// sequence header OBU type (AV1 spec §6.2.2).
const (
	av1Z            = 0x80 // the first OBU element continues the previous packet's
	av1N            = 0x08 // the first packet of a coded video sequence
	av1OBUSeqHeader = 1
)

// AV1Keyframe reports whether an AV1 RTP payload (the AV1 RTP payload
// specification) starts a random access point: its aggregation header's N
// bit set (a new coded video sequence, which begins with a key frame), or
// an OBU element that begins in this packet holding a sequence header,
// which encoders send with every key frame.
func AV1Keyframe(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	agg := p[0]
	if agg&av1N != 0 {
		return true
	}
	w := int(agg>>4) & 0x03 // elements in the packet, 0: each with a length
	off := 1
	for i := 0; off < len(p); i++ {
		size := len(p) - off // the last element of W != 0 has no length
		if w == 0 || i < w-1 {
			n, l := leb128(p[off:])
			if l == 0 {
				return false
			}
			off += l
			size = n
		}
		if size <= 0 || size > len(p)-off {
			return false
		}
		if !(i == 0 && agg&av1Z != 0) && (p[off]>>3)&0x0f == av1OBUSeqHeader {
			return true
		}
		off += size
		if w != 0 && i == w-1 {
			break
		}
	}
	return false
}

// leb128 reads an unsigned LEB128 value (AV1 spec §4.10.5) of at most 8
// bytes; l is 0 when p holds no complete one, or it overflows an int.
func leb128(p []byte) (v, l int) {
	for i := 0; i < len(p) && i < 8; i++ {
		v |= int(p[i]&0x7f) << (7 * i)
		if p[i]&0x80 == 0 {
			if v < 0 {
				return 0, 0
			}
			return v, i + 1
		}
	}
	return 0, 0
}
