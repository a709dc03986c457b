package media

import (
	"encoding/hex"
	"strings"
)

// H264Profile is an H264 profile as profile-level-id names it (RFC 6184
// §8.1): profile_idc plus the constraint flags of profile-iop, read the way
// libwebrtc's h264_profile_level_id table reads them.
type H264Profile uint8

// H264 profiles a profile-level-id can name. The zero value is none: the
// parameter is malformed or names a profile sluice does not know.
const (
	H264ProfileNone H264Profile = iota
	H264ConstrainedBaseline
	H264Baseline
	H264Main
	H264Extended
	H264ConstrainedHigh
	H264High
	H264PredictiveHigh444
)

var h264ProfileNames = [...]string{"none", "Constrained Baseline", "Baseline", "Main", "Extended", "Constrained High", "High", "High 4:4:4 Predictive"}

func (p H264Profile) String() string {
	if int(p) < len(h264ProfileNames) {
		return h264ProfileNames[p]
	}
	return "none"
}

// h264ProfilePatterns is libwebrtc's kProfilePatterns: profile_idc and a
// bit pattern of profile-iop ('x' for either), in the order they are
// tried. The four low bits of profile-iop are reserved and must be zero.
var h264ProfilePatterns = []struct {
	idc     byte
	pattern string
	profile H264Profile
}{
	{0x42, "x1xx0000", H264ConstrainedBaseline},
	{0x4d, "1xxx0000", H264ConstrainedBaseline},
	{0x58, "11xx0000", H264ConstrainedBaseline},
	{0x42, "x0xx0000", H264Baseline},
	{0x58, "10xx0000", H264Baseline},
	{0x4d, "0x0x0000", H264Main},
	{0x64, "00000000", H264High},
	{0x64, "00001100", H264ConstrainedHigh},
	{0xf4, "00000000", H264PredictiveHigh444},
}

func bitsMatch(pattern string, b byte) bool {
	for i := range 8 {
		bit := b&(0x80>>i) != 0
		switch pattern[i] {
		case '1':
			if !bit {
				return false
			}
		case '0':
			if bit {
				return false
			}
		}
	}
	return true
}

// ParseH264Profile reads the profile of a profile-level-id value (six hex
// digits: profile_idc, profile-iop, level_idc). An absent parameter means
// Baseline at level 1 (RFC 6184 §8.1). It returns H264ProfileNone for
// anything malformed or unknown.
func ParseH264Profile(plid string) H264Profile {
	if plid == "" {
		plid = "42000a"
	}
	b, err := hex.DecodeString(plid)
	if err != nil || len(b) != 3 || b[2] == 0 {
		return H264ProfileNone
	}
	for _, p := range h264ProfilePatterns {
		if p.idc == b[0] && bitsMatch(p.pattern, b[1]) {
			return p.profile
		}
	}
	return H264ProfileNone
}

// h264Decodes lists, per profile a receiver offers, the profiles of
// streams its decoder takes. Every decoder that takes a profile takes the
// profiles it constrains: Constrained Baseline ⊂ Baseline ⊂ Main ⊂ High ⊂
// High 4:4:4 Predictive, Constrained Baseline ⊂ Constrained High ⊂ High,
// Baseline ⊂ Extended. Strictly, Baseline's FMO, ASO and redundant slices
// are not in Main; no encoder a WebRTC client meets uses them, and every
// browser's Main decoder plays Baseline streams (as MediaMTX serves them).
var h264Decodes = map[H264Profile][]H264Profile{
	H264ConstrainedBaseline: {H264ConstrainedBaseline},
	H264Baseline:            {H264ConstrainedBaseline, H264Baseline},
	H264Extended:            {H264ConstrainedBaseline, H264Baseline, H264Extended},
	H264Main:                {H264ConstrainedBaseline, H264Baseline, H264Main},
	H264ConstrainedHigh:     {H264ConstrainedBaseline, H264Baseline, H264ConstrainedHigh},
	H264High:                {H264ConstrainedBaseline, H264Baseline, H264Main, H264ConstrainedHigh, H264High},
	H264PredictiveHigh444:   {H264ConstrainedBaseline, H264Baseline, H264Main, H264ConstrainedHigh, H264High, H264PredictiveHigh444},
}

// Decodes reports whether a decoder of profile p takes a stream of
// profile q. The level is not compared: like libwebrtc, sluice leaves the
// level to the decoder (every WebRTC client offers
// level-asymmetry-allowed=1).
func (p H264Profile) Decodes(q H264Profile) bool {
	if q == H264ProfileNone {
		return false
	}
	for _, d := range h264Decodes[p] {
		if d == q {
			return true
		}
	}
	return false
}

// H264ProfileOf reads a codec's H264 profile from its fmtp.
func H264ProfileOf(c Codec) H264Profile {
	return ParseH264Profile(strings.TrimSpace(ParseFmtp(c.Fmtp)["profile-level-id"]))
}
