package rtc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// section builds a media section of kind listing "pt name/rate[/ch] [fmtp]"
// formats in order.
func section(kind, dir string, formats ...string) string {
	var pts []string
	var attrs strings.Builder
	for _, f := range formats {
		pt, rest, _ := strings.Cut(f, " ")
		rtpmap, fmtp, _ := strings.Cut(rest, " ")
		pts = append(pts, pt)
		fmt.Fprintf(&attrs, "a=rtpmap:%s %s\r\n", pt, rtpmap)
		if fmtp != "" {
			fmt.Fprintf(&attrs, "a=fmtp:%s %s\r\n", pt, fmtp)
		}
		if strings.HasSuffix(rtpmap, "/90000") && !strings.HasPrefix(rtpmap, "rtx") {
			fmt.Fprintf(&attrs, "a=rtcp-fb:%s nack pli\r\n", pt)
		}
	}
	return "m=" + kind + " 9 UDP/TLS/RTP/SAVPF " + strings.Join(pts, " ") + "\r\na=" + dir + "\r\n" + attrs.String()
}

func parseSDP(t *testing.T, sections ...string) *sdp.SessionDescription {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + strings.Join(sections, "")); err != nil {
		t.Fatal(err)
	}
	return &d
}

var (
	chromiumVideo = section("video", "sendonly",
		"96 VP8/90000", "97 rtx/90000 apt=96",
		"98 VP9/90000 profile-id=0", "99 rtx/90000 apt=98",
		"102 H264/90000 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f", "103 rtx/90000 apt=102",
		"106 H264/90000 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", "107 rtx/90000 apt=106",
		"45 AV1/90000 level-idx=5;profile=0;tier=0", "46 rtx/90000 apt=45",
		"114 red/90000", "116 ulpfec/90000")
	chromiumAudio = section("audio", "sendonly",
		"111 opus/48000/2 minptime=10;useinbandfec=1", "63 red/48000/2 111/111", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000", "13 CN/8000")
	gstreamerVideo = section("video", "sendrecv", "96 H264/90000 packetization-mode=1;profile-level-id=42c01e;level-asymmetry-allowed=1")
)

// TestSelectIngest: per section, the first format the publisher offers
// that sluice serves, or the first of webrtc.video_codecs; the section is
// trimmed to it and its RTX; a section with nothing servable is refused
// with its offer named.
func TestSelectIngest(t *testing.T) {
	for _, c := range []struct {
		name     string
		sections []string
		video    []string
		want     []string // per sending section: its formats after trimming; nil = ErrNoCodec
		reason   string   // in the error
	}{
		{"chromium: its own order", []string{chromiumVideo, chromiumAudio}, nil, []string{"96 97", "111"}, ""},
		{"chromium: video_codecs H264 first", []string{chromiumVideo, chromiumAudio}, []string{"H264", "VP8"}, []string{"102 103", "111"}, ""},
		{"chromium: video_codecs AV1", []string{chromiumVideo}, []string{"AV1"}, []string{"45 46"}, ""},
		{"gstreamer 42c01e", []string{gstreamerVideo}, nil, []string{"96"}, ""},
		{"vp9 only", []string{section("video", "sendonly", "98 VP9/90000 profile-id=0")}, nil, []string{"98"}, ""},
		{"av1 refused by video_codecs", []string{section("video", "sendonly", "45 AV1/90000")}, []string{"H264", "VP8"}, nil, "AV1"},
		{"h264 without packetization-mode", []string{section("video", "sendonly", "97 H264/90000 profile-level-id=42e01f")}, nil, nil, "H264 profile-level-id=42e01f"},
		{"h264 of an unknown profile", []string{section("video", "sendonly", "97 H264/90000 packetization-mode=1;profile-level-id=6e001f")}, nil, nil, "6e001f"},
		{"pcmu camera", []string{section("audio", "sendonly", "0 PCMU/8000")}, nil, []string{"0"}, ""},
		{"pcma after g722", []string{section("audio", "sendonly", "9 G722/8000", "8 PCMA/8000")}, nil, []string{"8"}, ""},
		{"g722 only", []string{section("audio", "sendonly", "9 G722/8000")}, nil, nil, "G722"},
		{"bundle-only audio (webrtcbin max-bundle)", []string{gstreamerVideo, strings.Replace(section("audio", "sendonly", "111 OPUS/48000/2 sprop-stereo=0"), "m=audio 9 ", "m=audio 0 ", 1) + "a=bundle-only\r\n"}, nil, []string{"96", "111"}, ""},
		{"rejected section left alone", []string{gstreamerVideo, strings.Replace(section("audio", "sendonly", "9 G722/8000"), "m=audio 9 ", "m=audio 0 ", 1)}, nil, []string{"96"}, ""},
		{"recvonly section left alone", []string{gstreamerVideo, section("audio", "recvonly", "9 G722/8000")}, nil, []string{"96"}, ""},
	} {
		d := parseSDP(t, c.sections...)
		codecs, err := SelectIngest(d, c.video)
		if c.want == nil {
			if !errors.Is(err, ErrNoCodec) || !strings.Contains(err.Error(), c.reason) {
				t.Errorf("%s: err = %v, want ErrNoCodec naming %q", c.name, err, c.reason)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var got []string
		for _, m := range d.MediaDescriptions {
			if sends(m) {
				got = append(got, strings.Join(m.MediaName.Formats, " "))
			}
		}
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s: sections trimmed to %q, want %q", c.name, got, c.want)
		}
		n := 0
		for _, w := range c.want {
			n += len(strings.Fields(w))
		}
		if len(codecs) != n {
			t.Errorf("%s: %d codecs for the MediaEngine, want %d: %v", c.name, len(codecs), n, codecs)
		}
	}
}

// TestPublisherAnswerHoldsTheChosenCodec: a real offer (pion as a
// GStreamer-like publisher: H264 42c01e, then VP8, and Opus) is answered
// with exactly the chosen codec per section, in the publisher's payload
// type.
func TestPublisherAnswerHoldsTheChosenCodec(t *testing.T) {
	m := &webrtc.MediaEngine{}
	for _, c := range []struct {
		p webrtc.RTPCodecParameters
		k webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
			SDPFmtpLine: "packetization-mode=1;profile-level-id=42c01e;level-asymmetry-allowed=1"}, PayloadType: 127}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8}, webrtc.RTPCodecTypeAudio},
	} {
		if err := m.RegisterCodec(c.p, c.k); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := webrtc.NewAPI(webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pub.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pub.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := ParseOffer(o.SDP)
	if err != nil {
		t.Fatal(err)
	}
	codecs, err := SelectIngest(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	trimmed, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, func(*Config) {})
	pc, err := e.NewPublisherPCFor(nil, codecs)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := SetOffer(pc, string(trimmed)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	answer, err := Answer(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	var a sdp.SessionDescription
	if err := a.UnmarshalString(answer); err != nil {
		t.Fatal(err)
	}
	want := []string{"127 H264/90000 packetization-mode=1;profile-level-id=42c01e;level-asymmetry-allowed=1", "8 PCMA/8000"}
	for i, m := range a.MediaDescriptions {
		f := Formats(m)
		if len(f) != 1 {
			t.Fatalf("answer section %d has %d formats: %v", i, len(f), f)
		}
		got := fmt.Sprintf("%d %s/%d", f[0].PT, f[0].Name, f[0].ClockRate)
		if f[0].Fmtp != "" {
			got += " " + f[0].Fmtp
		}
		if got != want[i] {
			t.Errorf("answer section %d: %q, want %q", i, got, want[i])
		}
	}
}

// TestParseOfferICEAttributes: RFC 8839 §5.4 bounds ice-ufrag to 4..256
// and ice-pwd to 22..256 ice-chars, in the session or a media section.
func TestParseOfferICEAttributes(t *testing.T) {
	good := offerFromPion(t)
	var ufrag, pwd string
	for _, l := range strings.Split(good, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := strings.CutPrefix(l, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	if ufrag == "" || pwd == "" {
		t.Fatal("pion's offer has no ICE credentials")
	}
	for _, c := range []struct {
		name       string
		ufrag, pwd string
		ok         bool
	}{
		{"pion's own", ufrag, pwd, true},
		{"shortest", "abcd", strings.Repeat("p", 22), true},
		{"longest", strings.Repeat("u", 256), strings.Repeat("p", 256), true},
		{"ice-chars + and /", "ab+/", strings.Repeat("a+/0", 6), true},
		{"ufrag 3", "abc", pwd, false},
		{"ufrag 5000", strings.Repeat("u", 5000), pwd, false},
		{"pwd 21", ufrag, strings.Repeat("p", 21), false},
		{"pwd 257", ufrag, strings.Repeat("p", 257), false},
		{"ufrag with -", "ab-cd", pwd, false},
		{"pwd with =", ufrag, strings.Repeat("p", 22) + "=", false},
		{"ufrag with a space", "ab cd", pwd, false},
	} {
		offer := strings.ReplaceAll(good, "a=ice-ufrag:"+ufrag, "a=ice-ufrag:"+c.ufrag)
		offer = strings.ReplaceAll(offer, "a=ice-pwd:"+pwd, "a=ice-pwd:"+c.pwd)
		_, err := ParseOffer(offer)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && (!errors.Is(err, ErrBadOffer) || !strings.Contains(err.Error(), "ice-")) {
			t.Errorf("%s: err = %v, want ErrBadOffer naming the attribute", c.name, err)
		}
	}
	noPwd := strings.ReplaceAll(good, "a=ice-pwd:"+pwd+"\r\n", "")
	if _, err := ParseOffer(noPwd); !errors.Is(err, ErrBadOffer) {
		t.Errorf("offer without ice-pwd: %v", err)
	}
}
