package e2e

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/handshake"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/config"
)

// closedWithin reports whether the server closes c within d (reading and
// dropping whatever it sends first).
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestRTMPBadInput: garbage, a stalled handshake and an oversized chunk
// each end their own connection, within the handshake timeout, while a
// publisher on the same server goes on.
func TestRTMPBadInput(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, func(c *config.Config) { c.RTMP.HandshakeTimeout = time.Second })
	addr := srv.RTMPAddr().String()
	ffmpegPublish(t, 60, "flv", "rtmp://"+addr+"/live/good")
	st := waitStream(t, srv.Hub(), "good", 10*time.Second)

	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	garbage := dial()
	junk := make([]byte, 64<<10)
	_, _ = rand.Read(junk)
	junk[0] = 0x03 // the RTMP version byte, so the handshake reads on
	_, _ = garbage.Write(junk)
	if !closedWithin(garbage, 5*time.Second) {
		t.Error("garbage: connection still open after 5 s")
	}

	stalled := dial()
	start := time.Now()
	if !closedWithin(stalled, 5*time.Second) {
		t.Error("stalled handshake: connection still open after 5 s")
	} else if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("stalled handshake closed after %v, before the 1 s timeout", d)
	}

	// A valid handshake, then a chunk announcing a 16 MiB message (the
	// limit is 10 MiB).
	big := dial()
	if _, _, err := handshake.DoClient(big, false, false); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	_, _ = big.Write([]byte{0x03, 0, 0, 0, 0xff, 0xff, 0xff, 0x14, 0, 0, 0, 0})
	_, _ = big.Write(junk[:4096])
	if !closedWithin(big, 5*time.Second) {
		t.Error("oversized chunk: connection still open after 5 s")
	}

	// The publisher was not disturbed: its stream is the same and live.
	if now, err := srv.Hub().Lookup("good"); err != nil || now != st {
		t.Fatalf("the good stream was disturbed: %v", err)
	}
	p0, _ := st.Ingested()
	deadline := time.Now().Add(5 * time.Second)
	for p, _ := st.Ingested(); p == p0; p, _ = st.Ingested() {
		if time.Now().After(deadline) {
			t.Fatal("the good stream took no packets for 5 s")
		}
		time.Sleep(20 * time.Millisecond) // polling a counter
	}
}

// TestRTMPUnsupportedCodec: an MP3 track is left out (logged by name),
// the H264 track is published.
func TestRTMPUnsupportedCodec(t *testing.T) {
	needTool(t, "ffmpeg")
	if out, _ := exec.Command("ffmpeg", "-hide_banner", "-encoders").Output(); !strings.Contains(string(out), "libmp3lame") {
		t.Skip("ffmpeg has no MP3 encoder")
	}
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=44100",
		"-t", "20", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "libmp3lame",
		"-f", "flv", "rtmp://"+srv.RTMPAddr().String()+"/mp3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
	}()
	st := waitStream(t, srv.Hub(), "mp3", 10*time.Second)
	names := publishedCodecs(st)
	if strings.Join(names, ",") != "H264" {
		t.Fatalf("tracks %v, want H264 alone", names)
	}
}

// TestRTMPAuthAndLimits: a token on the stream key or the URL passes the
// publish and read rules; none is refused; the per-IP session limit
// counts RTMP connections.
func TestRTMPAuthAndLimits(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	srv := startEdgeServer(t, func(c *config.Config) {
		c.Auth = auth.Config{Default: auth.ModeDeny, Rules: []auth.RuleConfig{
			{Actions: []string{"publish"}, Mode: auth.ModeStatic, Tokens: []auth.StaticToken{{Token: "pubtok"}}},
			{Actions: []string{"read"}, Mode: auth.ModeStatic, Tokens: []auth.StaticToken{{Token: "readtok"}}},
			{Actions: []string{"api"}, Mode: auth.ModeAllow},
		}}
		c.Limits.MaxSessionsPerIP = 3
	})
	addr := srv.RTMPAddr().String()

	// No token: refused, nothing published.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "2", "-c:v", "libx264", "-preset", "ultrafast",
		"-f", "flv", "rtmp://"+addr+"/live/sec").CombinedOutput()
	if err == nil {
		t.Fatalf("publish without a token succeeded: %s", out)
	}
	if _, err := srv.Hub().Lookup("sec"); err == nil {
		t.Fatal("stream published without a token")
	}

	// OBS style: the token on the stream key.
	ffmpegPublish(t, 60, "flv", "rtmp://"+addr+"/live/sec?token=pubtok")
	waitStream(t, srv.Hub(), "sec", 10*time.Second)
	if got := probeStreams(t, "rtmp://"+addr+"/sec?token=readtok"); len(got) == 0 || got[0] != "h264" {
		t.Fatalf("read with a token: ffprobe sees %v", got)
	}
	pctx, pcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer pcancel()
	if out, err := exec.CommandContext(pctx, "ffprobe", "-hide_banner", "-loglevel", "error", "-rw_timeout", "5000000",
		"rtmp://"+addr+"/sec?token=pubtok").CombinedOutput(); err == nil {
		t.Fatalf("read with the publish token succeeded: %s", out)
	}

	// The publisher holds one place; two stalled connections take the
	// rest; a fourth is refused at once.
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them: no event to wait on
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	if !closedWithin(c, 3*time.Second) || time.Since(start) > 2*time.Second {
		t.Fatalf("a connection over the per-IP limit was not closed at once")
	}
}
