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
