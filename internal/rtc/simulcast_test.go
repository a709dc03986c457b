package rtc

import (
	"slices"
	"testing"

	"github.com/pion/sdp/v3"
)

func TestSimulcastRIDs(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
	for _, c := range []struct {
		name, media string
		mid         string
		want        []string
	}{
		{"none", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\n", "0", nil},
		{"chrome", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=rid:q send\r\na=rid:h send\r\na=rid:f send\r\na=simulcast:send q;h;f\r\n", "0", []string{"q", "h", "f"}},
		{"paused and alternatives", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\na=simulcast:send 1,2;~3;4\r\n", "v", []string{"1", "4"}},
		{"recv only", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=simulcast:recv a;b\r\n", "0", nil},
		{"recv then send", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:0\r\na=simulcast:recv a;b send c;d\r\n", "0", []string{"c", "d"}},
		{"other mid", "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=simulcast:send a;b\r\n", "0", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d sdp.SessionDescription
			if err := d.UnmarshalString(head + c.media); err != nil {
				t.Fatal(err)
			}
			if got := SimulcastRIDs(&d, c.mid); !slices.Equal(got, c.want) {
				t.Fatalf("SimulcastRIDs = %q, want %q", got, c.want)
			}
		})
	}
}
