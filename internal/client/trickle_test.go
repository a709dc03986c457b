package client

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

const testOffer = "v=0\r\n" +
	"o=- 1 1 IN IP4 0.0.0.0\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:0\r\n" +
	"a=ice-ufrag:oldU\r\n" +
	"a=ice-pwd:old-password-of-22-chars\r\n" +
	"a=fingerprint:sha-256 00:11\r\n" +
	"a=setup:actpass\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n" +
	"a=end-of-candidates\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=mid:1\r\n" +
	"a=ice-ufrag:oldU\r\n" +
	"a=ice-pwd:old-password-of-22-chars\r\n" +
	"a=fingerprint:sha-256 00:11\r\n" +
	"a=setup:actpass\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n"

func TestFragmentOf(t *testing.T) {
	c := webrtc.ICECandidateInit{Candidate: "candidate:2 1 udp 2130706431 127.0.0.1 6000 typ host"}
	got, err := fragmentOf(testOffer, []webrtc.ICECandidateInit{c}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := "a=group:BUNDLE 0 1\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 102\r\n" +
		"a=mid:0\r\n" +
		"a=ice-ufrag:oldU\r\n" +
		"a=ice-pwd:old-password-of-22-chars\r\n" +
		"a=candidate:2 1 udp 2130706431 127.0.0.1 6000 typ host\r\n" +
		"a=end-of-candidates\r\n"
	if got != want {
		t.Errorf("fragment\n%s\nwant\n%s", got, want)
	}
	if _, err := fragmentOf("v=0\r\n", nil, true); err == nil {
		t.Error("fragment of a description without media")
	}
}

func TestApplyFragment(t *testing.T) {
	frag := "a=ice-ufrag:newU\r\n" +
		"a=ice-pwd:new-password-of-22-chars\r\n" +
		"a=group:BUNDLE 0 1\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 102\r\n" +
		"a=mid:0\r\n" +
		"a=candidate:9 1 udp 2130706431 127.0.0.1 7000 typ host\r\n" +
		"a=end-of-candidates\r\n"
	out, err := applyFragment(testOffer, frag)
	if err != nil {
		t.Fatal(err)
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(out); err != nil {
		t.Fatal(err)
	}
	if d.Origin.SessionVersion != 2 {
		t.Errorf("session version %d, want 2", d.Origin.SessionVersion)
	}
	for i, m := range d.MediaDescriptions {
		u, _ := m.Attribute("ice-ufrag")
		p, _ := m.Attribute("ice-pwd")
		if u != "newU" || p != "new-password-of-22-chars" {
			t.Errorf("section %d: credentials %q %q", i, u, p)
		}
		var cands []string
		for _, a := range m.Attributes {
			if a.Key == "candidate" {
				cands = append(cands, a.Value)
			}
		}
		_, end := m.Attribute("end-of-candidates")
		switch i {
		case 0:
			if len(cands) != 1 || !strings.Contains(cands[0], " 7000 ") || !end {
				t.Errorf("section 0: candidates %q, end %v; want only the new one, and the end", cands, end)
			}
		default:
			if len(cands) != 0 || end {
				t.Errorf("section %d: candidates %q, end %v; want none", i, cands, end)
			}
		}
	}
	if _, err := applyFragment(testOffer, "a=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n"); err == nil {
		t.Error("a fragment without credentials was applied")
	}
}
