package e2e

import (
	"context"
	"crypto/rand"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/events"
)

// srtURL is the srt:// URL of the server with a stream id.
func srtURL(srv *node, streamID string, extra string) string {
	return "srt://" + srv.SRTAddr().String() + "?streamid=" + streamID + "&latency=120000" + extra
}

func TestSRTPublishToWHEP(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, nil)
	sub := srv.Events().Subscribe(64)
	defer sub.Close()
	ffmpegPublish(t, 6, "mpegts", srtURL(srv, "publish:cam", "&pkt_size=1316"))
	st := waitStream(t, srv.Hub(), "cam", 10*time.Second)
	names := publishedCodecs(st)
	if strings.Join(names, ",") != "H264,MPEG4-GENERIC" {
		t.Fatalf("tracks %v, want H264 and AAC", names)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := client.View(ctx, srv.base+"/whep/cam", client.ViewOptions{NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 25, 5*time.Second); got < 25 {
		t.Fatalf("viewer got %d access units in 5 s, want 25", got)
	}
	waitEvent(t, sub, events.StreamPublished, "cam", time.Second)
	waitEvent(t, sub, events.StreamUnpublished, "cam", 15*time.Second)
}

func TestSRTRead(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	srv := startEdgeServer(t, nil)
	// Published with the access-control syntax, read with sluice's own.
	ffmpegPublish(t, 60, "mpegts", srtURL(srv, "#!::r=tsread,m=publish", "&pkt_size=1316"))
	waitStream(t, srv.Hub(), "tsread", 10*time.Second)
	url := srtURL(srv, "read:tsread", "")
	if got := probeStreams(t, url); strings.Join(got, ",") != "h264,aac" {
		t.Fatalf("ffprobe sees %v, want h264 and aac", got)
	}
	if n := countFrames(t, url, 2); n < 40 {
		t.Fatalf("ffmpeg decoded %d frames of 2 s of 25 fps, want at least 40", n)
	}
}

// srtRefused runs a short ffmpeg publish to url and reports whether it
// failed.
func srtRefused(t *testing.T, url string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "1", "-c:v", "libx264", "-preset", "ultrafast",
		"-f", "mpegts", url).Run()
	return err != nil && ctx.Err() == nil
}

// TestSRTBadInputAndPassphrase: garbage datagrams, a bad stream id and a
// missing or wrong passphrase are refused; the right passphrase
// publishes.
func TestSRTBadInputAndPassphrase(t *testing.T) {
	needTool(t, "ffmpeg")
	const pass = "correct-horse-battery"
	srv := startEdgeServer(t, func(c *config.Config) { c.SRT.Passphrase = pass })

	c, err := net.Dial("udp", srv.SRTAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	junk := make([]byte, 1500)
	for i := range 200 {
		_, _ = rand.Read(junk)
		if i%2 == 0 {
			junk[0] = 0x80 // a control packet
		}
		_, _ = c.Write(junk[:64+i*7])
	}
	c.Close()

	for _, u := range []string{
		srtURL(srv, "bogus", "&passphrase="+pass),
		srtURL(srv, "publish:nopass", ""),
		srtURL(srv, "publish:wrongpass", "&passphrase=wrong-horse-battery"),
	} {
		if !srtRefused(t, u) {
			t.Errorf("%s: ffmpeg's publish was not refused", u)
		}
	}
	for _, name := range []string{"nopass", "wrongpass"} {
		if _, err := srv.Hub().Lookup(name); err == nil {
			t.Errorf("stream %s published", name)
		}
	}
	ffmpegPublish(t, 60, "mpegts", srtURL(srv, "publish:withpass", "&pkt_size=1316&passphrase="+pass))
	waitStream(t, srv.Hub(), "withpass", 10*time.Second)
}

// TestSRTUnsupportedCodec: an MPEG-1 audio (MP2) track is left out, the
// H264 track is published.
func TestSRTUnsupportedCodec(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000",
		"-t", "20", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "mp2",
		"-f", "mpegts", srtURL(srv, "publish:mp2", "&pkt_size=1316"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	st := waitStream(t, srv.Hub(), "mp2", 10*time.Second)
	names := publishedCodecs(st)
	if strings.Join(names, ",") != "H264" {
		t.Fatalf("tracks %v, want H264 alone", names)
	}
}

// TestSRTReadH265: a WebRTC publisher's H265 is read over SRT (MPEG-TS)
// by ffprobe.
func TestSRTReadH265(t *testing.T) {
	needTool(t, "ffprobe")
	clip := loadH265Clip(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/hevc", client.PublishOptions{H265: true, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	fed := make(chan struct{})
	fctx, stop := context.WithCancel(ctx)
	go func() {
		defer close(fed)
		start := time.Now()
		for i := range 8 * len(clip) {
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
	if got := probeStreams(t, srtURL(srv, "read:hevc", "")); strings.Join(got, ",") != "hevc" {
		t.Fatalf("ffprobe over SRT sees %v, want hevc", got)
	}
}
