package whep

import (
	"errors"
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
		{"high only", []string{h264High}, nil},
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
