package client

import (
	"encoding/binary"
	"time"
)

// OpusFrameDuration is the duration of the packets OpusTestPacket builds.
const OpusFrameDuration = 20 * time.Millisecond

// OpusTestPacket returns a valid 20 ms Opus packet that decodes to silence
// and carries n, so that a receiver can tell packets apart and check their
// order. It is a code 3 packet (RFC 6716 §3.2.5) with one CELT fullband
// frame, the usual silence frame 0xFF 0xFE, and two bytes of padding that
// hold n; decoders ignore padding.
func OpusTestPacket(n uint16) []byte {
	return []byte{
		0xfb,       // TOC: config 31 (CELT FB 20 ms), mono, code 3
		0x41,       // frame count byte: CBR, padding, 1 frame
		0x02,       // 2 bytes of padding
		0xff, 0xfe, // the frame: silence
		byte(n >> 8), byte(n),
	}
}

// OpusTestIndex returns the n that OpusTestPacket put into p.
func OpusTestIndex(p []byte) (uint16, bool) {
	if len(p) != 7 || p[0] != 0xfb || p[1] != 0x41 || p[2] != 0x02 {
		return 0, false
	}
	return binary.BigEndian.Uint16(p[5:]), true
}
