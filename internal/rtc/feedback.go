package rtc

import (
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Feedback is the RTCP feedback (RFC 4585 §4.2, RFC 5104 §7.1) a remote
// peer's SDP lists for one payload type of one media section.
type Feedback struct {
	NACK bool // generic NACK: "nack"
	PLI  bool // "nack pli"
	FIR  bool // "ccm fir"
}

// FeedbackOf returns the feedback that the media section with the given
// mid lists for payload type pt, including "*" (all payload types) lines.
func FeedbackOf(d *sdp.SessionDescription, mid string, pt uint8) Feedback {
	var fb Feedback
	if d == nil {
		return fb
	}
	want := strconv.Itoa(int(pt))
	for _, m := range d.MediaDescriptions {
		if v, _ := m.Attribute("mid"); v != mid {
			continue
		}
		for _, a := range m.Attributes {
			if a.Key != "rtcp-fb" {
				continue
			}
			f := strings.Fields(a.Value)
			if len(f) < 2 || (f[0] != want && f[0] != "*") {
				continue
			}
			param := ""
			if len(f) > 2 {
				param = strings.ToLower(f[2])
			}
			switch strings.ToLower(f[1]) {
			case "nack":
				switch param {
				case "":
					fb.NACK = true
				case "pli":
					fb.PLI = true
				}
			case "ccm":
				if param == "fir" {
					fb.FIR = true
				}
			}
		}
	}
	return fb
}
