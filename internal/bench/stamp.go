package bench

import (
	"encoding/binary"
	"slices"
)

// stampUUID marks the SEI that carries an access unit's index. ASCII, so it
// holds no zero byte.
var stampUUID = [16]byte{'s', 'l', 'u', 'i', 'c', 'e', '-', 'b', 'e', 'n', 'c', 'h', '-', 't', 's', '1'}

// stampIndexLen is the size of the encoded index: 8 bytes of 7 bits each,
// the top bit always set so that no zero byte (and no start code or
// emulation prevention) can appear.
const stampIndexLen = 8

// minStampSEI is the smallest stamp SEI: NAL header, payloadType,
// payloadSize, UUID, index, rbsp trailing bits.
const minStampSEI = 1 + 1 + 1 + len(stampUUID) + stampIndexLen + 1

// stampSEI returns an SEI NAL unit (user data unregistered, ITU-T H.264
// D.1.7) of about size bytes (at least minStampSEI) that carries index n.
// The bytes after the index are 0xA5 padding.
func stampSEI(n uint64, size int) []byte {
	size = max(size, minStampSEI)
	// NAL header, payloadType, payloadSize (p/255+1 bytes), payload p, trailing bits.
	wire := func(p int) int { return 1 + 1 + p/255 + 1 + p + 1 }
	p := size - 4
	for wire(p) > size {
		p--
	}
	p = max(p, len(stampUUID)+stampIndexLen)
	nal := make([]byte, 0, wire(p))
	nal = append(nal, 0x06, 0x05) // SEI, payloadType 5
	for r := p; ; r -= 255 {
		if r < 255 {
			nal = append(nal, byte(r))
			break
		}
		nal = append(nal, 0xff)
	}
	nal = append(nal, stampUUID[:]...)
	var idx [stampIndexLen]byte
	for i := range idx {
		idx[i] = 0x80 | byte(n>>(7*(stampIndexLen-1-i)))&0x7f
	}
	nal = append(nal, idx[:]...)
	for range p - len(stampUUID) - stampIndexLen {
		nal = append(nal, 0xa5)
	}
	return append(nal, 0x80)
}

// stampAU returns au with a stamp SEI for index n inserted before its first
// slice, padded so that the access unit is about target bytes (no padding
// when target is 0 or already reached).
func stampAU(au [][]byte, n uint64, target int) [][]byte {
	size := 0
	for _, nalu := range au {
		size += len(nalu)
	}
	sei := stampSEI(n, target-size)
	i := slices.IndexFunc(au, func(nalu []byte) bool {
		t := nalu[0] & 0x1f
		return t == 1 || t == 5
	})
	if i < 0 {
		i = len(au)
	}
	out := make([][]byte, 0, len(au)+1)
	out = append(out, au[:i]...)
	out = append(out, sei)
	return append(out, au[i:]...)
}

// findStamp looks for the start of a stamp SEI in an H264 RTP payload
// (RFC 6184): a single SEI NAL unit, the first fragment of an FU-A SEI, or
// an SEI inside a STAP-A. It reads a few bytes of any other packet.
func findStamp(payload []byte) (uint64, bool) {
	if len(payload) < 2 {
		return 0, false
	}
	switch payload[0] & 0x1f {
	case 6: // single NAL unit
		return parseStamp(payload[1:])
	case 28: // FU-A: FU header, then the NAL payload without its header
		if payload[1]&0x80 != 0 && payload[1]&0x1f == 6 {
			return parseStamp(payload[2:])
		}
	case 24: // STAP-A: 16-bit size, NAL unit, …
		for rest := payload[1:]; len(rest) >= 3; {
			n := int(binary.BigEndian.Uint16(rest))
			if n == 0 || 2+n > len(rest) {
				return 0, false
			}
			if nalu := rest[2 : 2+n]; nalu[0]&0x1f == 6 {
				if v, ok := parseStamp(nalu[1:]); ok {
					return v, true
				}
			}
			rest = rest[2+n:]
		}
	}
	return 0, false
}

// parseStamp reads the SEI message at the start of b (the SEI RBSP after
// the NAL header): payloadType 5, its size, the UUID and the index.
func parseStamp(b []byte) (uint64, bool) {
	if len(b) < 2 || b[0] != 0x05 {
		return 0, false
	}
	b = b[1:]
	for len(b) > 0 && b[0] == 0xff {
		b = b[1:]
	}
	if len(b) < 1+len(stampUUID)+stampIndexLen {
		return 0, false
	}
	b = b[1:]
	if [16]byte(b[:16]) != stampUUID {
		return 0, false
	}
	var n uint64
	for _, c := range b[16 : 16+stampIndexLen] {
		if c&0x80 == 0 {
			return 0, false
		}
		n = n<<7 | uint64(c&0x7f)
	}
	return n, true
}
