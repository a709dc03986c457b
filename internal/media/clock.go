package media

import "time"

// ntpEpochOffset is the number of seconds from the NTP epoch (1900) to the
// Unix epoch (1970).
const ntpEpochOffset = 2208988800

// NTPTime converts a 64-bit NTP timestamp (RFC 3550 §4: seconds since 1900
// in the high 32 bits, the fraction in the low 32) to wall-clock time.
func NTPTime(ntp uint64) time.Time {
	sec := int64(ntp>>32) - ntpEpochOffset
	frac := int64(ntp & 0xffffffff)
	return time.Unix(sec, frac*int64(time.Second)>>32)
}

// ToNTP converts wall-clock time to a 64-bit NTP timestamp.
func ToNTP(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / uint64(time.Second)
	return sec<<32 | frac
}

// SenderReport is the mapping that one RTCP sender report gives (RFC 3550
// §6.4.1): RTP timestamp RTP of the track was sampled at wall time NTP.
type SenderReport struct {
	NTP time.Time
	RTP uint32
}

// WallClock converts an RTP timestamp of the same track to wall-clock time.
// Timestamps within half the 32-bit range before or after the report's are
// mapped; the track's clock is assumed to run at clockRate.
func (sr SenderReport) WallClock(ts uint32, clockRate uint32) time.Time {
	if clockRate == 0 {
		return sr.NTP
	}
	d := int64(int32(ts - sr.RTP))
	return sr.NTP.Add(time.Duration(d * int64(time.Second) / int64(clockRate)))
}
