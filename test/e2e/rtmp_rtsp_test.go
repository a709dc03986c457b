package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/config"
)

// TestRTMPToRTSP: an RTMP publisher's H264 and AAC are read over RTSP
// (interleaved TCP) by ffprobe and ffmpeg, which decodes the frames.
func TestRTMPToRTSP(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	srv := startEdgeServer(t, func(c *config.Config) { c.RTSP = config.RTSP{Listen: "127.0.0.1:0"} })
	ffmpegPublish(t, 60, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/rtsp1")
	waitStream(t, srv.Hub(), "rtsp1", 10*time.Second)
	url := "rtsp://" + srv.RTSPAddr().String() + "/rtsp1"
	if got := probeStreams(t, url, "-rtsp_transport", "tcp"); strings.Join(got, ",") != "h264,aac" {
		t.Fatalf("ffprobe over RTSP sees %v, want h264 and aac", got)
	}
	// countFrames's -rw_timeout is no RTSP option: -timeout is.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-timeout", "10000000",
		"-rtsp_transport", "tcp", "-i", url, "-t", "2", "-map", "0:v:0", "-f", "framemd5", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg reading %s: %v", url, err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	if n < 40 {
		t.Fatalf("ffmpeg decoded %d frames of 2 s of 25 fps over RTSP, want at least 40", n)
	}
}
