package rtc

import (
	"testing"

	"github.com/pion/sdp/v3"
)

func TestFeedbackOf(t *testing.T) {
	offer := "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97 98\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n" +
		"a=rtpmap:96 H264/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n" +
		"a=rtpmap:97 H264/90000\r\na=rtcp-fb:97 ccm fir\r\n" +
		"a=rtpmap:98 VP8/90000\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:* nack\r\na=rtcp-fb:* nack pli\r\n"
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		mid  string
		pt   uint8
		want Feedback
	}{
		{"0", 96, Feedback{NACK: true, PLI: true, FIR: true}},
		{"0", 97, Feedback{FIR: true}},
		{"0", 98, Feedback{}},
		{"1", 96, Feedback{NACK: true, PLI: true}},
		{"2", 96, Feedback{}},
	} {
		if got := FeedbackOf(&d, c.mid, c.pt); got != c.want {
			t.Errorf("mid %s pt %d: %+v, want %+v", c.mid, c.pt, got, c.want)
		}
	}
}
