package client

import (
	"bytes"
	"errors"
	"io"
)

// ReadH265AccessUnits splits an H265 Annex-B stream into access units. The
// stream must carry an access unit delimiter (NAL type 35, x265's aud=1)
// before every access unit; the delimiters are dropped, as WriteH265 would
// drop them too.
func ReadH265AccessUnits(r io.Reader) ([][][]byte, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var aus [][][]byte
	for _, nalu := range splitAnnexB(b) {
		if h265NALType(nalu) == 35 {
			aus = append(aus, nil)
			continue
		}
		if len(aus) == 0 {
			return nil, errors.New("Annex-B stream does not start with an access unit delimiter")
		}
		aus[len(aus)-1] = append(aus[len(aus)-1], nalu)
	}
	if len(aus) == 0 {
		return nil, errors.New("no access units")
	}
	return aus, nil
}

// IsIRAP reports whether an H265 access unit holds a random access
// picture (NAL types 16 to 23: BLA, IDR, CRA).
func IsIRAP(au [][]byte) bool {
	for _, n := range au {
		if t := h265NALType(n); t >= 16 && t <= 23 {
			return true
		}
	}
	return false
}

func h265NALType(nalu []byte) byte {
	if len(nalu) == 0 {
		return 0xff
	}
	return nalu[0] >> 1 & 0x3f
}

// splitAnnexB returns the NAL units between start codes (00 00 01, or 00 00
// 00 01), without them.
func splitAnnexB(b []byte) [][]byte {
	var out [][]byte
	start := -1
	for i := 0; i+2 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		if start >= 0 {
			out = append(out, trimZeros(b[start:i]))
		}
		start = i + 3
		i += 2
	}
	if start >= 0 && start < len(b) {
		out = append(out, b[start:])
	}
	return out
}

// trimZeros drops the zero byte of a four-byte start code that follows a
// NAL unit (trailing_zero_8bits).
func trimZeros(n []byte) []byte { return bytes.TrimRight(n, "\x00") }
