package transcode

// G.711 (ITU-T G.711): 8-bit logarithmic samples, μ-law (PCMU) or A-law
// (PCMA), RTP payload types 0 and 8 (RFC 3551 §4.5.14). Decoding is a
// table look-up: no library needed.

var mulawTable, alawTable [256]float32

func init() {
	for i := range 256 {
		mulawTable[i] = float32(mulaw(byte(i))) / 32768
		alawTable[i] = float32(alaw(byte(i))) / 32768
	}
}

// mulaw expands one μ-law byte to 16-bit linear (G.711 Table 2).
func mulaw(b byte) int {
	b = ^b
	t := (int(b&0x0f)<<3 + 0x84) << ((b & 0x70) >> 4)
	if b&0x80 != 0 {
		return 0x84 - t
	}
	return t - 0x84
}

// alaw expands one A-law byte to 16-bit linear (G.711 Table 1).
func alaw(b byte) int {
	b ^= 0x55
	t := int(b&0x0f) << 4
	switch seg := (b & 0x70) >> 4; seg {
	case 0:
		t += 8
	case 1:
		t += 0x108
	default:
		t = (t + 0x108) << (seg - 1)
	}
	if b&0x80 != 0 {
		return t
	}
	return -t
}

// DecodeG711 appends the samples of a G.711 payload to pcm, as float32 in
// -1..1 (interleaved where the stream has more channels, as its bytes are).
func DecodeG711(pcm []float32, payload []byte, mulawLaw bool) []float32 {
	tab := &alawTable
	if mulawLaw {
		tab = &mulawTable
	}
	for _, b := range payload {
		pcm = append(pcm, tab[b])
	}
	return pcm
}

// EncodeG711 appends the G.711 bytes of samples in -1..1 to dst (the
// inverse of DecodeG711: every byte decoded and encoded again is
// itself, but for μ-law's negative zero).
func EncodeG711(dst []byte, pcm []float32, mulawLaw bool) []byte {
	for _, s := range pcm {
		v := int(s * 32768)
		v = min(max(v, -32768), 32767)
		if mulawLaw {
			dst = append(dst, linearToMulaw(v))
		} else {
			dst = append(dst, linearToAlaw(v))
		}
	}
	return dst
}

// linearToMulaw compresses a 16-bit sample to μ-law (G.711 §3, as in
// the ITU's reference code: 14-bit magnitude, bias 0x84 at that scale).
func linearToMulaw(v int) byte {
	const bias, clip = 0x84 >> 2, 8159
	v >>= 2
	mask := byte(0xff)
	if v < 0 {
		v, mask = -v, 0x7f
	}
	v = min(v, clip) + bias
	seg := segment(v, 0x3f)
	if seg >= 8 {
		return 0x7f ^ mask
	}
	return (byte(seg<<4) | byte(v>>(seg+1)&0x0f)) ^ mask
}

// linearToAlaw compresses a 16-bit sample to A-law (13-bit magnitude,
// even bits inverted).
func linearToAlaw(v int) byte {
	v >>= 3
	mask := byte(0xd5)
	if v < 0 {
		v, mask = -v-1, 0x55
	}
	seg := segment(v, 0x1f)
	if seg >= 8 {
		return 0x7f ^ mask
	}
	a := byte(seg << 4)
	if seg < 2 {
		a |= byte(v >> 1 & 0x0f)
	} else {
		a |= byte(v >> seg & 0x0f)
	}
	return a ^ mask
}

// segment is the G.711 segment of magnitude v, whose segment 0 ends at
// first (each next one ends at twice the previous one's end plus one).
func segment(v, first int) int {
	for seg, end := 0, first; seg < 8; seg, end = seg+1, end<<1|1 {
		if v <= end {
			return seg
		}
	}
	return 8
}
