package e2e

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// TestViewerCodecMismatch publishes H264 constrained baseline (42e01f,
// packetization-mode 1) and checks that only a video-only viewer offering a
// compatible H264 is accepted; the others get 406 with a reason (RFC 6184
// §8.1: the packetization mode must match and the viewer's profile must
// decode the publisher's).
func TestViewerCodecMismatch(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/cbp", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	feedCtx, stopFeed := context.WithCancel(ctx)
	go f.run(feedCtx)
	defer func() { stopFeed(); <-f.done }()
	<-f.sentAU(1)

	cases := []struct {
		name   string
		codecs []webrtc.RTPCodecParameters
		want   int
	}{
		{"VP8 only", []webrtc.RTPCodecParameters{client.VP8Codec()}, http.StatusNotAcceptable},
		{"H264 Main only", []webrtc.RTPCodecParameters{client.H264Codec("4d001f", 0)}, http.StatusNotAcceptable},
		{"H264 Constrained High decodes CB", []webrtc.RTPCodecParameters{client.H264Codec("640c1f", 1)}, http.StatusCreated},
		{"H264 packetization-mode 0 only", []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 0)}, http.StatusNotAcceptable},
		{"H264 42e01f pm 1", []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}, http.StatusCreated},
		{"VP8 then H264 42e01f", []webrtc.RTPCodecParameters{client.VP8Codec(), client.H264Codec("42e01f", 1)}, http.StatusCreated},
		{"VP8 only, with Opus", []webrtc.RTPCodecParameters{client.VP8Codec()}, http.StatusNotAcceptable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// A viewer that offers video it cannot decode is refused even
			// when its audio would fit: it expects a picture.
			v, err := client.View(ctx, base+"/whep/cbp", client.ViewOptions{VideoCodecs: c.codecs, NoAudio: !strings.Contains(c.name, "Opus")})
			if c.want != http.StatusCreated {
				if err == nil {
					_ = v.Close()
					t.Fatalf("accepted, want %d", c.want)
				}
				var he *client.HTTPError
				if !errors.As(err, &he) || he.Status != c.want {
					t.Fatalf("%v, want status %d", err, c.want)
				}
				if he.Body == "" || strings.Contains(he.Body, "\n") {
					t.Errorf("reason %q is not one line", he.Body)
				}
				t.Logf("%d %s", he.Status, he.Body)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			// The track arrives with the first packet.
			select {
			case au := <-v.AccessUnits():
				if !client.IsIDR(au.NALUs) {
					t.Error("first access unit is not a keyframe")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no access unit within 5 s")
			}
			codec, _ := v.VideoCodec()
			if !strings.EqualFold(codec.MimeType, webrtc.MimeTypeH264) {
				t.Errorf("negotiated %s, want H264", codec.MimeType)
			}
		})
	}
}

// chromiumH264 is the H264 part of Debian Chromium's video offer, in its
// order.
func chromiumH264() []webrtc.RTPCodecParameters {
	return []webrtc.RTPCodecParameters{
		client.H264Codec("42001f", 1), client.H264Codec("42001f", 0),
		client.H264Codec("42e01f", 1), client.H264Codec("42e01f", 0),
		client.H264Codec("4d001f", 1), client.H264Codec("4d001f", 0),
		client.H264Codec("f4001f", 1), client.H264Codec("64001f", 1),
	}
}

// TestH264ProfileByMeaning: a publisher offering GStreamer x264enc's
// 42c01e (constrained baseline) is played by a viewer offering Chromium's
// H264 list, in the first format of the viewer's that decodes it (the
// answer has the viewer's payload type and profile-level-id); a High
// publisher is refused to a viewer that offers only constrained baseline.
func TestH264ProfileByMeaning(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	for _, c := range []struct {
		name, pubFmtp string
		viewer        []webrtc.RTPCodecParameters
		wantPLID      string // "" = 406
	}{
		{"gstreamer CB to chromium", "packetization-mode=1;profile-level-id=42c01e", chromiumH264(), "42001f"},
		{"high to CB-only", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028", []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}, ""},
		// Chromium lists High 4:4:4 Predictive before High: its decoder
		// takes High, and it comes first.
		{"high to chromium", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640028", chromiumH264(), "f4001f"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stream := strings.ReplaceAll(c.name, " ", "-")
			pub, err := client.Publish(ctx, base+"/whip/"+stream, client.PublishOptions{H264Fmtp: c.pubFmtp})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			f := newFeed(pub, loadClip(t), 0)
			feedCtx, stopFeed := context.WithCancel(ctx)
			go f.run(feedCtx)
			defer func() { stopFeed(); <-f.done }()
			<-f.sentAU(1)

			v, err := client.View(ctx, base+"/whep/"+stream, client.ViewOptions{VideoCodecs: c.viewer, NoAudio: true})
			if c.wantPLID == "" {
				var he *client.HTTPError
				if err == nil {
					_ = v.Close()
					t.Fatal("accepted, want 406")
				}
				if !errors.As(err, &he) || he.Status != http.StatusNotAcceptable || !strings.Contains(he.Body, "640028") {
					t.Fatalf("%v, want 406 naming the published profile", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			select {
			case au := <-v.AccessUnits():
				if !client.IsIDR(au.NALUs) {
					t.Error("first access unit is not a keyframe")
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no access unit within 5 s")
			}
			codec, _ := v.VideoCodec()
			if !strings.Contains(codec.SDPFmtpLine, "profile-level-id="+c.wantPLID) || !strings.Contains(codec.SDPFmtpLine, "packetization-mode=1") {
				t.Errorf("negotiated %q, want the viewer's %s pm=1", codec.SDPFmtpLine, c.wantPLID)
			}
		})
	}
}
