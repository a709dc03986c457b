package whep

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

func offer(t *testing.T, sections ...string) *sdp.SessionDescription {
	t.Helper()
	s := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" + strings.Join(sections, "")
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		t.Fatal(err)
	}
	return &d
}

const (
	h264CBP  = "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"
	h264High = "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=1;profile-level-id=640c1f\r\n"
	h264PM0  = "m=video 9 UDP/TLS/RTP/SAVPF 102\r\na=recvonly\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 packetization-mode=0;profile-level-id=42e01f\r\n"
	vp8      = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n"
	opus     = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n"
	opusOff  = "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n"
)

func TestMatch(t *testing.T) {
	published := []hub.Track{
		{Index: 0, Codec: media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}},
		{Index: 1, Codec: media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	}
	for _, c := range []struct {
		name     string
		sections []string
		want     []int // track indexes; nil = ErrNoCompatibleCodec
	}{
		{"cbp + opus", []string{h264CBP, opus}, []int{0, 1}},
		{"video only", []string{h264CBP}, []int{0}},
		{"audio only", []string{opus}, []int{1}},
		{"audio rejected port 0", []string{h264CBP, opusOff}, []int{0}},
		{"audio bundle-only port 0", []string{h264CBP, opusOff + "a=bundle-only\r\n"}, []int{0, 1}},
		{"constrained high decodes constrained baseline", []string{h264High}, []int{0}},
		{"pm 0 only", []string{h264PM0}, nil},
		{"vp8 only", []string{vp8}, nil},
		{"vp8 + opus: video expected but undecodable", []string{vp8, opus}, nil},
	} {
		got, err := match(published, offer(t, c.sections...))
		if c.want == nil {
			if !errors.Is(err, ErrNoCompatibleCodec) {
				t.Errorf("%s: err = %v, want ErrNoCompatibleCodec", c.name, err)
			} else if !strings.Contains(err.Error(), "H264") {
				t.Errorf("%s: reason %q does not name the published codec", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var idx []int
		for _, tr := range got {
			idx = append(idx, tr.Index)
		}
		if len(idx) != len(c.want) || (len(idx) > 0 && idx[0] != c.want[0]) || (len(idx) > 1 && idx[1] != c.want[1]) {
			t.Errorf("%s: tracks %v, want %v", c.name, idx, c.want)
		}
	}
}

// TestTrimOffer: a browser-like offer keeps, per section, the formats the
// published codecs can serve and their RTX formats, with their rtpmap,
// fmtp and rtcp-fb lines; everything else about the section stays. A
// section with nothing usable is left as it was.
func TestTrimOffer(t *testing.T) {
	const video = "m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 106 107 39 40\r\n" +
		"a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
		"a=extmap:1 urn:ietf:params:rtp-hdrext:toffset\r\n" +
		"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n" +
		"a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
		"a=rtpmap:102 H264/90000\r\na=rtcp-fb:102 nack\r\na=rtcp-fb:102 nack pli\r\n" +
		"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
		"a=rtpmap:103 rtx/90000\r\na=fmtp:103 apt=102\r\n" +
		"a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n" +
		"a=rtpmap:107 rtx/90000\r\na=fmtp:107 apt=106\r\n" +
		"a=rtpmap:39 AV1/90000\r\na=rtcp-fb:39 nack\r\n" +
		"a=rtpmap:40 rtx/90000\r\na=fmtp:40 apt=39\r\n" +
		"a=rtcp-fb:* transport-cc\r\n"
	const audio = "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110\r\n" +
		"a=mid:1\r\na=recvonly\r\n" +
		"a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" +
		"a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\n" +
		"a=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n" +
		"a=rtpmap:13 CN/8000\r\na=rtpmap:110 telephone-event/48000\r\n"
	const app = "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n"
	published := []hub.Track{
		{Index: 0, Codec: media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}},
		{Index: 1, Codec: media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
	}
	d := offer(t, video, audio, app)
	trimOffer(d, published)
	out, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got sdp.SessionDescription
	if err := got.Unmarshal(out); err != nil {
		t.Fatalf("trimmed offer does not parse: %v\n%s", err, out)
	}
	want := map[string]struct {
		formats string
		lines   []string // attribute lines that must remain, in order
	}{
		"0": {"102 103", []string{"mid:0", "recvonly", "rtcp-mux", "extmap:1 urn:ietf:params:rtp-hdrext:toffset",
			"rtpmap:102 H264/90000", "rtcp-fb:102 nack", "rtcp-fb:102 nack pli",
			"fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
			"rtpmap:103 rtx/90000", "fmtp:103 apt=102", "rtcp-fb:* transport-cc"}},
		"1": {"111", []string{"mid:1", "recvonly", "rtpmap:111 opus/48000/2", "rtcp-fb:111 transport-cc", "fmtp:111 minptime=10;useinbandfec=1"}},
		"2": {"webrtc-datachannel", []string{"mid:2"}},
	}
	for _, m := range got.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		w := want[mid]
		if f := strings.Join(m.MediaName.Formats, " "); f != w.formats {
			t.Errorf("section %s: formats %q, want %q", mid, f, w.formats)
		}
		var lines []string
		for _, a := range m.Attributes {
			lines = append(lines, a.String())
		}
		if strings.Join(lines, "\n") != strings.Join(w.lines, "\n") {
			t.Errorf("section %s: attributes\n%s\nwant\n%s", mid, strings.Join(lines, "\n"), strings.Join(w.lines, "\n"))
		}
	}

	// Nothing usable (VP8 only, H264 published): the section stays whole,
	// and match refuses the offer with its reason as before.
	d = offer(t, vp8)
	trimOffer(d, published)
	if f := strings.Join(d.MediaDescriptions[0].MediaName.Formats, " "); f != "96" || len(d.MediaDescriptions[0].Attributes) != 2 {
		t.Errorf("section without a usable format changed: %q %v", f, d.MediaDescriptions[0].Attributes)
	}
}

// TestMatchDerived: a track with a derived (transcoded) track is one
// choice among them for its section; audio that cannot be transcoded here
// is left out, the viewer getting the video.
func TestMatchDerived(t *testing.T) {
	h264 := media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}
	pcma := media.Codec{MimeType: "audio/PCMA", ClockRate: 8000, Channels: 1}
	aac := media.Codec{MimeType: "audio/MPEG4-GENERIC", ClockRate: 48000, Channels: 2, Fmtp: "config=1190"}
	opusC := media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}
	const pcmaOffer = "m=audio 9 UDP/TLS/RTP/SAVPF 8 111\r\na=recvonly\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:111 opus/48000/2\r\n"
	derived := []hub.Track{{Index: 0, Codec: h264}, {Index: 1, Codec: pcma}, {Index: 2, Codec: opusC, Derived: true, Source: 1}}
	unavailable := []hub.Track{{Index: 0, Codec: h264}, {Index: 1, Codec: aac, DeriveErr: "unavailable: no libopus"}}
	noDeriver := []hub.Track{{Index: 0, Codec: h264}, {Index: 1, Codec: aac}}
	for _, c := range []struct {
		name     string
		tracks   []hub.Track
		sections []string
		want     []int
	}{
		{"opus viewer gets the derived track", derived, []string{h264CBP, opus}, []int{0, 2}},
		{"pcma viewer gets pcma", derived, []string{h264CBP, pcmaOffer}, []int{0, 1}},
		{"transcoding unavailable: video only", unavailable, []string{h264CBP, opus}, []int{0}},
		{"audio-only viewer of an untranscodable stream", unavailable, []string{opus}, nil},
		{"no deriver: refused as before", noDeriver, []string{h264CBP, opus}, nil},
	} {
		got, err := match(c.tracks, offer(t, c.sections...))
		if c.want == nil {
			if !errors.Is(err, ErrNoCompatibleCodec) {
				t.Errorf("%s: err = %v, want ErrNoCompatibleCodec", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		var idx []int
		for _, tr := range got {
			idx = append(idx, tr.Index)
		}
		if !slices.Equal(idx, c.want) {
			t.Errorf("%s: tracks %v, want %v", c.name, idx, c.want)
		}
	}
}
