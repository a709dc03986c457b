package whep

import (
	"strings"
	"testing"

	"github.com/sluice-media/sluice/internal/media"
)

func TestWithOpusStereo(t *testing.T) {
	answer := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1\r\n"
	stereo := []media.Codec{{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1"}}
	mono := []media.Codec{{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"}}
	got := withOpusStereo(answer, stereo)
	want := strings.Replace(answer, "useinbandfec=1\r\n", "useinbandfec=1;stereo=1;sprop-stereo=1\r\n", 1)
	if got != want {
		t.Errorf("stereo publisher:\n%q\nwant\n%q", got, want)
	}
	if got := withOpusStereo(answer, mono); got != answer {
		t.Errorf("mono publisher: answer changed:\n%q", got)
	}
	// A viewer that offered stereo=0 keeps its own value; the other is added.
	a0 := strings.Replace(answer, "useinbandfec=1", "useinbandfec=1;stereo=0", 1)
	if got := withOpusStereo(a0, stereo); !strings.Contains(got, "a=fmtp:111 minptime=10;useinbandfec=1;stereo=0;sprop-stereo=1\r\n") {
		t.Errorf("viewer's stereo=0: %q", got)
	}
	// No fmtp line for Opus: one is added after its rtpmap.
	bare := strings.Replace(answer, "a=fmtp:111 minptime=10;useinbandfec=1\r\n", "", 1)
	if got := withOpusStereo(bare, stereo); got != strings.Replace(bare, "opus/48000/2\r\n", "opus/48000/2\r\na=fmtp:111 stereo=1;sprop-stereo=1\r\n", 1) {
		t.Errorf("no fmtp: %q", got)
	}
}
