package whep

import "github.com/pion/webrtc/v4"

// sent is how many packets, and payload bytes, forward has sent to the
// viewer; the metrics read it at scrape time.
func (s *Session) sent() (packets, bytes uint64) {
	return s.packetsOut.Load(), s.bytesOut.Load()
}

// rtcpTarget is the SSRC and clock rate of the track sender sends, which
// the viewer's receiver reports and feedback refer to.
func rtcpTarget(sender *webrtc.RTPSender) (ssrc, clockRate uint32) {
	if enc := sender.GetParameters().Encodings; len(enc) > 0 {
		ssrc = uint32(enc[0].SSRC)
	}
	if t, ok := sender.Track().(*outTrack); ok {
		clockRate = t.codec.ClockRate
	}
	return ssrc, clockRate
}
