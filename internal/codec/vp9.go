package codec

// VP9 payload descriptor bits (RFC 9628 §4.2): the first byte.
const (
	vp9I = 0x80 // picture ID present
	vp9P = 0x40 // inter-picture predicted
	vp9L = 0x20 // layer indices present
	vp9F = 0x10 // flexible mode
	vp9B = 0x08 // start of a frame
	vp9V = 0x02 // scalability structure present
)

// VP9Keyframe reports whether a VP9 RTP payload (RFC 9628) is the first
// packet of a key frame of the base spatial layer: the descriptor's B bit
// set and P clear, spatial layer 0, and the frame's uncompressed header
// (VP9 bitstream spec §6.2) saying frame_type KEY_FRAME.
func VP9Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	if b0&vp9B == 0 || b0&vp9P != 0 {
		return false
	}
	off := 1
	if b0&vp9I != 0 { // picture ID, 7 or 15 bits (M)
		if len(p) <= off {
			return false
		}
		if p[off]&0x80 != 0 {
			off++
		}
		off++
	}
	if b0&vp9L != 0 { // TID(3) U(1) SID(3) D(1), then TL0PICIDX unless flexible
		if len(p) <= off {
			return false
		}
		if sid := (p[off] >> 1) & 0x07; sid != 0 {
			return false
		}
		off++
		if b0&vp9F == 0 {
			off++
		}
	}
	// F with P would carry reference indices; P is clear here.
	if b0&vp9V != 0 { // scalability structure (§4.2.1)
		if len(p) <= off {
			return false
		}
		ss := p[off]
		off++
		if ss&0x10 != 0 { // Y: a width and height per spatial layer
			off += 4 * (int(ss>>5) + 1)
		}
		if ss&0x08 != 0 { // G: a picture group description
			if len(p) <= off {
				return false
			}
			n := int(p[off])
			off++
			for range n {
				if len(p) <= off {
					return false
				}
				off += 1 + int((p[off]>>2)&0x03) // T U R(2), then R reference indices
			}
		}
	}
	if len(p) <= off {
		return false
	}
	// Uncompressed header: frame_marker (2 bits, 0b10), profile_low_bit,
	// profile_high_bit, a reserved zero bit in profile 3,
	// show_existing_frame, frame_type (0: KEY_FRAME).
	h := p[off]
	if h>>6 != 0b10 {
		return false
	}
	bit := 4 // the bit after the profile, counted from the top
	if h&0x30 == 0x30 {
		bit++ // profile 3
	}
	if h&(0x80>>bit) != 0 { // show_existing_frame: no new frame at all
		return false
	}
	return h&(0x80>>(bit+1)) == 0
}
