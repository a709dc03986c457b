package media

import "testing"

func TestParseH264Profile(t *testing.T) {
	for plid, want := range map[string]H264Profile{
		"42c01e":   H264ConstrainedBaseline, // GStreamer x264enc
		"42e01f":   H264ConstrainedBaseline, // Chromium, Firefox, Safari, OBS/libdatachannel
		"42E01F":   H264ConstrainedBaseline,
		"4d801f":   H264ConstrainedBaseline, // Main with constraint_set0: CB
		"42001f":   H264Baseline,
		"42801f":   H264Baseline,
		"4d001f":   H264Main,
		"4d401f":   H264Main,
		"58a01e":   H264Baseline, // Extended with constraint_set0
		"640c1f":   H264ConstrainedHigh,
		"64001f":   H264High,
		"640032":   H264High,
		"f4001f":   H264PredictiveHigh444,
		"":         H264Baseline, // RFC 6184 §8.1 default
		"42e00f":   H264ConstrainedBaseline,
		"42e0":     H264ProfileNone, // too short
		"42e01f00": H264ProfileNone, // too long
		"zz001f":   H264ProfileNone,
		"42e100":   H264ProfileNone, // level 0 is no level
		"42e11f":   H264ProfileNone, // reserved bits set
		"6e001f":   H264ProfileNone, // High 10: no WebRTC client sends it
		"7a001f":   H264ProfileNone,
	} {
		if got := ParseH264Profile(plid); got != want {
			t.Errorf("%q: %v, want %v", plid, got, want)
		}
	}
}

// TestCompatibleH264 holds real offers' H264 formats against real
// publishers' ones: a viewer takes a publisher whose profile its decoder
// takes, with the same packetization-mode.
func TestCompatibleH264(t *testing.T) {
	h := func(fmtp string) Codec { return Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: fmtp} }
	const (
		gstCB      = "packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg=="
		chromeCB   = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		chromeB    = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"
		chromeB0   = "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"
		chromeM    = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"
		chromeH    = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"
		chromeH444 = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f"
		firefoxCB  = "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1"
		safariCH   = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f"
		obsCB      = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
		obsHigh    = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640029"
	)
	for _, c := range []struct {
		pub, viewer string
		want        bool
	}{
		{gstCB, chromeCB, true},
		{gstCB, chromeB, true},
		{gstCB, chromeM, true},
		{gstCB, chromeH, true},
		{gstCB, chromeH444, true},
		{gstCB, firefoxCB, true},
		{gstCB, safariCH, true},
		{gstCB, chromeB0, false}, // packetization-mode differs
		{obsCB, gstCB, true},
		{chromeB, chromeCB, false}, // Baseline may use what CB leaves out
		{chromeM, chromeB, false},
		{chromeM, chromeH, true},
		{chromeM, safariCH, false}, // Main has B-frames, Constrained High none
		{obsHigh, chromeCB, false}, // High to a CB-only viewer stays refused
		{obsHigh, firefoxCB, false},
		{obsHigh, chromeH, true},
		{obsHigh, chromeH444, true},
		{safariCH, chromeH, true},
		{chromeH444, chromeH, false},
		{"packetization-mode=1;profile-level-id=6e001f", chromeH, false}, // unknown profile: never
	} {
		if got := Compatible(h(c.pub), h(c.viewer)); got != c.want {
			t.Errorf("publisher %q → viewer %q: %v, want %v", c.pub, c.viewer, got, c.want)
		}
	}
}

func TestCompatibleVP9AV1(t *testing.T) {
	v := func(name, fmtp string) Codec { return Codec{MimeType: "video/" + name, ClockRate: 90000, Fmtp: fmtp} }
	for _, c := range []struct {
		a, b Codec
		want bool
	}{
		{v("VP9", "profile-id=0"), v("VP9", ""), true},
		{v("VP9", "profile-id=2"), v("VP9", "profile-id=0"), false},
		{v("VP9", "profile-id=2"), v("vp9", "profile-id=2"), true},
		{v("AV1", "level-idx=5;profile=0;tier=0"), v("AV1", ""), true},
		{v("AV1", "profile=1"), v("AV1", "level-idx=5;profile=0;tier=0"), false},
		{v("AV1", ""), v("VP9", ""), false},
	} {
		if got := Compatible(c.a, c.b); got != c.want {
			t.Errorf("%v → %v: %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
