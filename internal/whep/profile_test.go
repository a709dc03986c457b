package whep

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// format is one payload format of a real client's offer.
type format struct{ pt, name, fmtp string }

// videoSection builds a recvonly video section listing formats in order.
func videoSection(formats ...format) string {
	var pts []string
	var attrs strings.Builder
	for _, f := range formats {
		pts = append(pts, f.pt)
		fmt.Fprintf(&attrs, "a=rtpmap:%s %s/90000\r\n", f.pt, f.name)
		if f.fmtp != "" {
			fmt.Fprintf(&attrs, "a=fmtp:%s %s\r\n", f.pt, f.fmtp)
		}
	}
	return "m=video 9 UDP/TLS/RTP/SAVPF " + strings.Join(pts, " ") + "\r\na=mid:0\r\na=recvonly\r\n" + attrs.String()
}

// The H264 formats of real offers, in their order (rtx, red and ulpfec left
// out where they do not change the choice).
var (
	chromiumOffer = videoSection(
		format{"96", "VP8", ""}, format{"97", "rtx", "apt=96"},
		format{"98", "VP9", "profile-id=0"}, format{"100", "VP9", "profile-id=2"},
		format{"102", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"}, format{"103", "rtx", "apt=102"},
		format{"104", "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f"},
		format{"106", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
		format{"108", "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f"},
		format{"127", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"},
		format{"39", "H264", "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=4d001f"},
		format{"45", "AV1", "level-idx=5;profile=0;tier=0"},
		format{"112", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=64001f"},
		format{"117", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=f4001f"},
		format{"114", "red", ""}, format{"116", "ulpfec", ""},
	)
	firefoxOffer = videoSection(
		format{"120", "VP8", "max-fs=12288;max-fr=60"}, format{"121", "VP9", "max-fs=12288;max-fr=60"},
		format{"126", "H264", "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1"},
		format{"97", "H264", "profile-level-id=42e01f;level-asymmetry-allowed=1"},
		format{"105", "H264", "profile-level-id=42001f;level-asymmetry-allowed=1;packetization-mode=1"},
		format{"99", "AV1", ""},
	)
	safariOffer = videoSection(
		format{"96", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f"}, format{"97", "rtx", "apt=96"},
		format{"98", "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, format{"99", "rtx", "apt=98"},
		format{"100", "H265", ""}, format{"102", "VP8", ""},
	)
	gstreamerOffer = videoSection( // webrtcbin with an H264 recvonly transceiver
		format{"96", "H264", "packetization-mode=1;profile-level-id=42c01f;level-asymmetry-allowed=1"},
	)
	libdatachannelOffer = videoSection( // OBS, libdatachannel's default
		format{"96", "H264", "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1"},
	)
)

// TestMatchH264Profiles: a publisher is served to each real viewer whose
// offer has a format that decodes its profile; the track goes out in the
// first such format of the viewer's offer (the answer names it).
func TestMatchH264Profiles(t *testing.T) {
	h264 := func(fmtp string) []hub.Track {
		return []hub.Track{{Index: 0, Codec: media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: fmtp}}}
	}
	gstCB := h264("packetization-mode=1;profile-level-id=42c01e;sprop-parameter-sets=Z0LAHtkDxWhAAAADAEAAAAwDxYuS,aMuMsg==")
	pionCB := h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f")
	obsHigh := h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640029")
	chromeMain := h264("level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f")
	for _, c := range []struct {
		name      string
		published []hub.Track
		offer     string
		want      string // the profile-level-id the track goes out in; "" = refused
	}{
		{"gstreamer CB → chromium", gstCB, chromiumOffer, "42001f"},
		{"gstreamer CB → firefox", gstCB, firefoxOffer, "42e01f"},
		{"gstreamer CB → safari", gstCB, safariOffer, "640c1f"},
		{"gstreamer CB → gstreamer", gstCB, gstreamerOffer, "42c01f"},
		{"gstreamer CB → libdatachannel", gstCB, libdatachannelOffer, "42e01f"},
		{"pion CB → chromium", pionCB, chromiumOffer, "42001f"},
		{"main → chromium", chromeMain, chromiumOffer, "4d001f"},
		{"main → firefox", chromeMain, firefoxOffer, ""},
		{"main → safari", chromeMain, safariOffer, ""},
		{"high → chromium", obsHigh, chromiumOffer, "64001f"},
		{"high → firefox (CB and B only)", obsHigh, firefoxOffer, ""},
		{"high → libdatachannel (CB only)", obsHigh, libdatachannelOffer, ""},
		{"high → gstreamer (CB only)", obsHigh, gstreamerOffer, ""},
	} {
		got, err := match(c.published, offer(t, c.offer))
		if c.want == "" {
			if !errors.Is(err, ErrNoCompatibleCodec) {
				t.Errorf("%s: err = %v, want ErrNoCompatibleCodec", c.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if len(got) != 1 {
			t.Errorf("%s: %d tracks", c.name, len(got))
			continue
		}
		f := media.ParseFmtp(got[0].Codec.Fmtp)
		if f["profile-level-id"] != c.want || f["packetization-mode"] != "1" {
			t.Errorf("%s: goes out as %q, want profile-level-id=%s;packetization-mode=1", c.name, got[0].Codec.Fmtp, c.want)
		}
		if got[0].Codec.MimeType != "video/H264" || got[0].Codec.ClockRate != 90000 {
			t.Errorf("%s: codec %v", c.name, got[0].Codec)
		}
	}
}
