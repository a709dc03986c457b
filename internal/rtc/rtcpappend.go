package rtc

import (
	"encoding/binary"

	"github.com/pion/rtcp"
)

// appendRTCP appends pkts as one compound packet, as rtcp.Marshal does.
// Sender reports without report blocks (what sluice sends every second to
// every viewer) are written in place; anything else goes through pion.
func appendRTCP(dst []byte, pkts []rtcp.Packet) ([]byte, error) {
	for _, p := range pkts {
		if sr, ok := p.(*rtcp.SenderReport); ok && len(sr.Reports) == 0 && len(sr.ProfileExtensions) == 0 {
			dst = appendSR(dst, sr)
			continue
		}
		raw, err := p.Marshal()
		if err != nil {
			return dst, err
		}
		dst = append(dst, raw...)
	}
	return dst, nil
}

// appendSR appends a sender report with no report blocks (RFC 3550 §6.4.1).
func appendSR(dst []byte, sr *rtcp.SenderReport) []byte {
	const words = 7 // header, SSRC, NTP (2), RTP, packets, octets
	dst = append(dst, 2<<6, byte(rtcp.TypeSenderReport))
	dst = binary.BigEndian.AppendUint16(dst, words-1)
	dst = binary.BigEndian.AppendUint32(dst, sr.SSRC)
	dst = binary.BigEndian.AppendUint64(dst, sr.NTPTime)
	dst = binary.BigEndian.AppendUint32(dst, sr.RTPTime)
	dst = binary.BigEndian.AppendUint32(dst, sr.PacketCount)
	return binary.BigEndian.AppendUint32(dst, sr.OctetCount)
}
