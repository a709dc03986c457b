package whep

import (
	"encoding/binary"

	"github.com/pion/rtcp"
)

// RTCP packet types (RFC 3550 §12.1).
const (
	rtcpRR   = 201
	rtcpSDES = 202
)

// takeRR reads the first receiver report of a compound RTCP packet in place
// into rr (its Reports slice reused) and drops source descriptions, which
// sluice does not use, so that the usual compound a viewer sends once a
// second (RR, often with SDES) is read without allocating. What remains,
// compacted at the front of b, is left for rtcp.Unmarshal: other packet
// types, a second receiver report, and anything unusual (padding, another
// version, a length that does not add up).
func takeRR(b []byte, rr *rtcp.ReceiverReport) (rest []byte, ok bool) {
	rest = b[:0]
	for len(b) >= 4 {
		n := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if n > len(b) {
			return append(rest, b...), ok
		}
		p := b[:n]
		b = b[n:]
		if p[0]>>6 == 2 && p[0]&0x20 == 0 { // version 2, no padding
			switch {
			case p[1] == rtcpSDES:
				continue
			case p[1] == rtcpRR && !ok && readRR(p, rr):
				ok = true
				continue
			}
		}
		rest = append(rest, p...) // never overtakes b: both move forward
	}
	return append(rest, b...), ok
}

// readRR decodes one receiver report (RFC 3550 §6.4.2) as pion's
// ReceiverReport.Unmarshal does, profile extensions left out.
func readRR(p []byte, rr *rtcp.ReceiverReport) bool {
	count := int(p[0] & 0x1f)
	if len(p) < 8+24*count {
		return false
	}
	rr.SSRC = binary.BigEndian.Uint32(p[4:])
	rr.Reports = rr.Reports[:0]
	rr.ProfileExtensions = nil
	for i := range count {
		r := p[8+24*i:]
		rr.Reports = append(rr.Reports, rtcp.ReceptionReport{
			SSRC:               binary.BigEndian.Uint32(r),
			FractionLost:       r[4],
			TotalLost:          uint32(r[5])<<16 | uint32(r[6])<<8 | uint32(r[7]),
			LastSequenceNumber: binary.BigEndian.Uint32(r[8:]),
			Jitter:             binary.BigEndian.Uint32(r[12:]),
			LastSenderReport:   binary.BigEndian.Uint32(r[16:]),
			Delay:              binary.BigEndian.Uint32(r[20:]),
		})
	}
	return true
}
