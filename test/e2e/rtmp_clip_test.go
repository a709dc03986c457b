package e2e

import (
	"context"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib"
	"github.com/bluenviron/gortmplib/pkg/codecs"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// TestRTMPClipToWHEP publishes the committed clips from a gortmplib
// client (H264 as classic FLV, H265 as Enhanced RTMP) and checks that a
// WHEP viewer gets the clip's access units byte for byte, from a
// keyframe to the last one sent.
func TestRTMPClipToWHEP(t *testing.T) {
	for _, c := range []struct {
		name  string
		clip  func(testing.TB) [][][]byte
		track func(au [][]byte) *gortmplib.Track
		view  []webrtc.RTPCodecParameters
	}{
		{"h264", loadClip, func(au [][]byte) *gortmplib.Track {
			var sps, pps []byte
			for _, n := range au {
				switch h264.NALUType(n[0] & 0x1f) {
				case h264.NALUTypeSPS:
					sps = n
				case h264.NALUTypePPS:
					pps = n
				}
			}
			return &gortmplib.Track{Codec: &codecs.H264{SPS: sps, PPS: pps}}
		}, nil},
		{"h265", loadH265Clip, func(au [][]byte) *gortmplib.Track {
			var vps, sps, pps []byte
			for _, n := range au {
				switch h265.NALUType((n[0] >> 1) & 0x3f) {
				case h265.NALUType_VPS_NUT:
					vps = n
				case h265.NALUType_SPS_NUT:
					sps = n
				case h265.NALUType_PPS_NUT:
					pps = n
				}
			}
			return &gortmplib.Track{Codec: &codecs.H265{VPS: vps, SPS: sps, PPS: pps}}
		}, []webrtc.RTPCodecParameters{client.H265Codec()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clip := c.clip(t)
			srv := startEdgeServer(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			u, _ := url.Parse("rtmp://" + srv.RTMPAddr().String() + "/live/clip")
			conn := &gortmplib.Client{URL: u, Publish: true}
			if err := conn.Initialize(ctx); err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			track := c.track(clip[0])
			w := &gortmplib.Writer{Conn: conn, Tracks: []*gortmplib.Track{track}}
			if err := w.Initialize(); err != nil {
				t.Fatal(err)
			}
			write := func(i int) error {
				pts := time.Duration(i) * frameDuration
				if c.name == "h264" {
					return w.WriteH264(track, pts, pts, clip[i])
				}
				return w.WriteH265(track, pts, pts, clip[i])
			}
			// gortmplib's server side reads 2 s of media to find the
			// tracks: those go at once, the rest at the clip's pace.
			const burst = 2*clipGOP + 1
			for i := range burst {
				if err := write(i); err != nil {
					t.Fatal(err)
				}
			}
			waitStream(t, srv.Hub(), "clip", 5*time.Second)
			v, err := client.View(ctx, srv.base+"/whep/clip", client.ViewOptions{VideoCodecs: c.view, NoAudio: true})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			tick := time.NewTicker(frameDuration)
			defer tick.Stop()
			for i := burst; i < len(clip); i++ {
				<-tick.C
				if err := write(i); err != nil {
					t.Fatal(err)
				}
			}
			got := collectAUs(v, clip, len(clip)-1)
			start := matchStart(clip, got)
			if len(got) < clipGOP || start < 0 || start+len(got) != len(clip) {
				t.Fatalf("viewer got %d access units, not the clip's from a keyframe to the end (start %d)", len(got), start)
			}
			if start%clipGOP != 0 {
				t.Errorf("viewer started at access unit %d, not a keyframe", start)
			}
		})
	}
}

// TestRTMPReadH265: a WebRTC publisher's H265 is read over Enhanced RTMP
// by a gortmplib player, whose access units are the clip's, in order.
func TestRTMPReadH265(t *testing.T) {
	clip := loadH265Clip(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/hevc", client.PublishOptions{H265: true, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	// The clip four times at real-time pace (12 s at most: the player
	// reads 2 s to find the tracks, then collects what it needs).
	fed := make(chan struct{})
	fctx, stop := context.WithCancel(ctx)
	go func() {
		defer close(fed)
		start := time.Now()
		for i := range 4 * len(clip) {
			if err := pub.WriteH265(clip[i%len(clip)], time.Duration(i)*frameDuration); err != nil {
				return
			}
			select {
			case <-fctx.Done():
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * frameDuration))):
			}
		}
	}()
	defer func() { stop(); <-fed }()
	waitStream(t, srv.Hub(), "hevc", 10*time.Second)

	u, _ := url.Parse("rtmp://" + srv.RTMPAddr().String() + "/hevc")
	conn := &gortmplib.Client{URL: u, Publish: false}
	if err := conn.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stopRead := context.AfterFunc(ctx, conn.Close)
	defer stopRead()
	r := &gortmplib.Reader{Conn: conn}
	if err := r.Initialize(); err != nil {
		t.Fatal(err)
	}
	tracks := r.Tracks()
	if len(tracks) != 1 {
		t.Fatalf("player sees %d tracks, want 1", len(tracks))
	}
	if _, ok := tracks[0].Codec.(*codecs.H265); !ok {
		t.Fatalf("player sees %T, want H265", tracks[0].Codec)
	}
	var got [][][]byte
	r.OnDataH265(tracks[0], func(_, _ time.Duration, au [][]byte) { got = append(got, au) })
	for len(got) < 2*clipGOP {
		if err := r.Read(); err != nil {
			t.Fatalf("after %d access units: %v", len(got), err)
		}
	}
	// The clip looped: compare against two copies of it.
	twice := append(append([][][]byte{}, clip...), clip...)
	if start := matchStart(twice, got); start < 0 || start%clipGOP != 0 {
		t.Fatalf("the player's %d access units are not the clip's from a keyframe (start %d)", len(got), start)
	}
}

// TestSlowReadersDoNotHoldUpThePublisher: an RTMP player that never
// reads what it is sent leaves the publisher and a WHEP viewer untouched
// (it reads through the tap, whose writer never waits for it).
func TestSlowReadersDoNotHoldUpThePublisher(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, func(c *config.Config) { c.RTMP.WriteTimeout = 2 * time.Second })
	ffmpegPublish(t, 60, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/slow")
	st := waitStream(t, srv.Hub(), "slow", 10*time.Second)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// A player that connects, asks to play and then reads nothing.
	u, _ := url.Parse("rtmp://" + srv.RTMPAddr().String() + "/slow")
	stuck := &gortmplib.Client{URL: u, Publish: false}
	if err := stuck.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	if tc, ok := stuck.NetConn().(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096) // fill up soon
	}

	v, err := client.View(ctx, srv.base+"/whep/slow", client.ViewOptions{NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// 4 s of video (100 frames at 25 fps), past the stuck player's
	// write timeout.
	if got := receiveAUs(v, 100, 8*time.Second); got < 100 {
		t.Fatalf("the viewer got %d access units in 8 s beside a stuck player, want 100", got)
	}
	if now, err := srv.Hub().Lookup("slow"); err != nil || now != st {
		t.Fatalf("the stream was disturbed: %v", err)
	}
}
