package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// mtxCamera is MediaMTX serving RTSP on loopback (TCP and UDP, ports of
// its own), fed by ffmpeg with H264 (a 4 s GOP) and PCMA: a camera as
// sluice meets them. It can be restarted on the same ports.
type mtxCamera struct {
	t        *testing.T
	bin, cfg string
	rtsp     string // host:port
	mtx, ff  *exec.Cmd
	logs     *syncBuffer
}

func startMTXCamera(t *testing.T) *mtxCamera {
	t.Helper()
	needFFmpeg(t)
	bin := mediamtxBinary(t)
	rtp, rtcp := freeUDPPair(t)
	c := &mtxCamera{t: t, bin: bin, rtsp: fmt.Sprintf("127.0.0.1:%d", localPort(t, "tcp")), logs: &syncBuffer{}}
	c.cfg = filepath.Join(t.TempDir(), "camera.yml")
	yml := strings.Join([]string{
		"logLevel: info",
		"api: false", "metrics: false", "pprof: false", "playback: false",
		"rtsp: true", "rtspTransports: [udp, tcp]",
		"rtspAddress: " + c.rtsp,
		fmt.Sprintf("rtpAddress: 127.0.0.1:%d", rtp), fmt.Sprintf("rtcpAddress: 127.0.0.1:%d", rtcp),
		"rtmp: false", "hls: false", "webrtc: false", "srt: false", "moq: false",
		"paths:", "  all_others:", "",
	}, "\n")
	if err := os.WriteFile(c.cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	c.start()
	t.Cleanup(func() {
		c.stop()
		if t.Failed() {
			t.Logf("camera (MediaMTX and ffmpeg) log:\n%s", lastLines(c.logs.String(), 40))
		}
	})
	return c
}

// start runs MediaMTX, waits for its RTSP port, and has ffmpeg publish
// into it.
func (c *mtxCamera) start() {
	t := c.t
	c.mtx = exec.Command(c.bin, c.cfg)
	c.mtx.Stdout, c.mtx.Stderr = c.logs, c.logs
	if err := c.mtx.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", c.rtsp, time.Second)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MediaMTX not listening on %s within 10 s: %v", c.rtsp, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a port
	}
	c.ff = exec.Command("ffmpeg", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=8000",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "100", "-tune", "zerolatency",
		"-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+c.rtsp+"/cam")
	c.ff.Stdout, c.ff.Stderr = c.logs, c.logs
	if err := c.ff.Start(); err != nil {
		t.Fatal(err)
	}
}

// stop ends ffmpeg and MediaMTX, as a camera that reboots.
func (c *mtxCamera) stop() {
	for _, p := range []*exec.Cmd{c.ff, c.mtx} {
		if p == nil || p.Process == nil {
			continue
		}
		_ = p.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.ff, c.mtx = nil, nil
}

// TestSourceMediaMTXCamera: MediaMTX as the camera (H264 with a 4 s GOP
// and PCMA, over transport auto); sluice pulls it always-on; a WHEP
// viewer's first frame is a keyframe from the GOP cache; the camera
// restarts (MediaMTX and its feed) and the same viewer goes on with
// continuous sequence numbers.
func TestSourceMediaMTXCamera(t *testing.T) {
	if testing.Short() {
		t.Skip("interop with MediaMTX: not in -short")
	}
	cam := startMTXCamera(t)
	n := startNode(t, func(c *config.Config) {
		c.Stream.ReconnectGrace = 20 * time.Second
		c.Sources = []config.Source{{Stream: "cam", URL: "rtsp://" + cam.rtsp + "/cam"}}
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	// ffmpeg needs a moment to publish: the source backs off meanwhile.
	waitSource(t, n.base, "cam", "connected", 20*time.Second, func(s sourceView) bool { return s.Source.State == "connected" })
	watch := newSeqWatch()
	v, err := client.View(ctx, n.base+"/whep/cam", client.ViewOptions{NoAudio: true, OnRTP: watch.onRTP,
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42c01f", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	readSourceAUs(ctx, t, v, 10, true)
	s := getSource(t, n.base, "cam")
	var codecs []string
	for _, tr := range s.Tracks {
		if tr.DerivedFrom == nil { // the Opus transcoded for WebRTC viewers is not the camera's
			codecs = append(codecs, tr.Codec)
		}
	}
	if strings.Join(codecs, ",") != "H264,PCMA" {
		t.Errorf("tracks %v, want H264 and PCMA", codecs)
	}

	cam.stop()
	waitSource(t, n.base, "cam", "lost", 15*time.Second, func(s sourceView) bool { return s.Source.State == "error" })
	for len(v.AccessUnits()) > 0 {
		<-v.AccessUnits()
	}
	before, _ := watch.snapshot()
	cam.start()
	waitSource(t, n.base, "cam", "connected again", 20*time.Second, func(s sourceView) bool { return s.Source.State == "connected" })
	readSourceAUs(ctx, t, v, 10, true) // from the camera's next keyframe: up to 4 s
	select {
	case <-v.Done():
		t.Fatal("the viewer's session ended across the camera's restart")
	default:
	}
	after, maxJump := watch.snapshot()
	if after[webrtc.RTPCodecTypeVideo] <= before[webrtc.RTPCodecTypeVideo] {
		t.Error("no packets after the restart")
	}
	if maxJump[webrtc.RTPCodecTypeVideo] != 1 {
		t.Errorf("the viewer's sequence numbers jumped by %d", maxJump[webrtc.RTPCodecTypeVideo])
	}
}
