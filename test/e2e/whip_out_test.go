package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
)

// TestWHIPToRTMPAndSRTReaders: a WebRTC publisher (H264 + Opus) is read
// with ffmpeg over rtmp:// and srt://: the video decodes (frames
// counted) and the Opus comes out as AAC, transcoded once for both.
func TestWHIPToRTMPAndSRTReaders(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/web", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	waitStream(t, srv.Hub(), "web", 10*time.Second)

	want := "h264"
	if wantAAC(t) {
		want = "h264,aac"
	}
	for _, url := range []string{
		"rtmp://" + srv.RTMPAddr().String() + "/web",
		srtURL(srv, "read:web", ""),
	} {
		if got := probeStreams(t, url); strings.Join(got, ",") != want {
			t.Errorf("%s: ffprobe sees %v, want %s", url, got, want)
		}
		if n := countFrames(t, url, 2); n < 40 {
			t.Errorf("%s: ffmpeg decoded %d frames of 2 s of 25 fps, want at least 40", url, n)
		}
	}
}
