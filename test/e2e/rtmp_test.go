package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/events"
	"github.com/sluice-media/sluice/internal/hub"
)

// needTool skips a test whose external client is missing (scripts/test.sh
// installs ffmpeg).
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s not installed", name)
	}
}

// ffmpegPublish runs ffmpeg sending a test pattern (H264, 25 fps, a
// keyframe a second) and a tone (AAC) for secs seconds at real-time pace
// to out in the given format. The process is killed when the test ends
// (secs bounds a test that forgets it).
func ffmpegPublish(t *testing.T, secs int, format, out string) <-chan error {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", fmt.Sprint(secs),
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "high", "-bf", "0", "-g", "25", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k",
		"-f", format, out}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	cmd := exec.CommandContext(ctx, "ffmpeg", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("ffmpeg: %v: %s", err, strings.TrimSpace(stderr.String()))
		}
		done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return done
}

// waitStream waits until the hub has a ready stream of that name.
func waitStream(t testing.TB, h *hub.Hub, name string, d time.Duration) *hub.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		if st, err := h.Lookup(name); err == nil {
			select {
			case <-st.Ready():
				return st
			case <-ctx.Done():
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %q not published within %v", name, d)
		case <-time.After(20 * time.Millisecond): // polling the registry
		}
	}
}

// publishedCodecs names the stream's tracks as published, without the
// ones transcoded for WebRTC viewers (AAC's derived Opus).
func publishedCodecs(st *hub.Stream) []string {
	var names []string
	for _, tr := range st.Tracks() {
		if !tr.Derived {
			names = append(names, tr.Codec.Name())
		}
	}
	return names
}

// probeStreams runs ffprobe on url and returns the codec names of its
// streams, in order.
func probeStreams(t *testing.T, url string, extra ...string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-rw_timeout", "10000000", "-analyzeduration", "1000000"}, extra...)
	args = append(args, "-show_entries", "stream=codec_name", "-of", "json", url)
	out, err := exec.CommandContext(ctx, "ffprobe", args...).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v (%s)", url, err, out)
	}
	var res struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("ffprobe output %q: %v", out, err)
	}
	var names []string
	for _, s := range res.Streams {
		names = append(names, s.CodecName)
	}
	return names
}

// countFrames decodes url with ffmpeg for at most secs seconds of media
// and returns the number of video frames decoded.
func countFrames(t *testing.T, url string, secs int, extra ...string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs+20)*time.Second)
	defer cancel()
	args := append([]string{"-hide_banner", "-loglevel", "error", "-rw_timeout", "10000000", "-analyzeduration", "1000000"}, extra...)
	args = append(args, "-i", url, "-t", fmt.Sprint(secs), "-map", "0:v:0", "-f", "framemd5", "-")
	out, err := exec.CommandContext(ctx, "ffmpeg", args...).Output()
	if err != nil {
		t.Fatalf("ffmpeg reading %s: %v", url, err)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

// waitEvent waits for an event of that kind and stream on sub.
func waitEvent(t *testing.T, sub *events.Subscription, k events.Kind, stream string, d time.Duration) events.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-sub.C:
			if e.Kind == k && e.Stream == stream {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event for %s within %v", k, stream, d)
		}
	}
}

func TestRTMPPublishToWHEP(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, nil)
	sub := srv.Events().Subscribe(64)
	defer sub.Close()
	ffmpegPublish(t, 6, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/obs")
	st := waitStream(t, srv.Hub(), "obs", 10*time.Second)
	names := publishedCodecs(st)
	if strings.Join(names, ",") != "H264,MPEG4-GENERIC" {
		t.Fatalf("tracks %v, want H264 and AAC", names)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := client.View(ctx, srv.base+"/whep/obs", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Video, and (where AAC can be transcoded) the AAC as Opus: 25 of
	// each, 1 s of video and half a second of audio.
	aus, opus := 0, 0
	audio := wantAAC(t)
	deadline := time.After(5 * time.Second)
	for aus < 25 || audio && opus < 25 {
		select {
		case <-v.AccessUnits():
			aus++
		case <-v.OpusPackets():
			opus++
		case <-deadline:
			t.Fatalf("viewer got %d access units and %d Opus packets in 5 s, want 25 (and 25 with audio: %v)", aus, opus, audio)
		}
	}
	if e := waitEvent(t, sub, events.StreamPublished, "obs", time.Second); !strings.HasPrefix(e.Session, "rtmp-") {
		t.Errorf("event %+v: want an rtmp- session", e)
	}
	// ffmpeg ends after 6 s: the publisher leaves.
	waitEvent(t, sub, events.StreamUnpublished, "obs", 10*time.Second)
}

func TestRTMPPlay(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	srv := startEdgeServer(t, nil)
	// The stream key carries the stream (OBS's Server + Stream Key).
	ffmpegPublish(t, 60, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/play1")
	waitStream(t, srv.Hub(), "play1", 10*time.Second)
	url := "rtmp://" + srv.RTMPAddr().String() + "/play1"
	if got := probeStreams(t, url); strings.Join(got, ",") != "h264,aac" {
		t.Fatalf("ffprobe sees %v, want h264 and aac", got)
	}
	if n := countFrames(t, url, 2); n < 40 {
		t.Fatalf("ffmpeg decoded %d frames of 2 s of 25 fps, want at least 40", n)
	}
}

func TestRTMPS(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	cert, key, _ := selfSigned(t)
	srv := startEdgeServer(t, func(c *config.Config) {
		c.RTMP.TLSListen, c.RTMP.TLSCert, c.RTMP.TLSKey = "127.0.0.1:0", cert, key
	})
	if srv.RTMPSAddr() == nil {
		t.Fatal("no RTMPS listener")
	}
	base := "rtmps://" + srv.RTMPSAddr().String()
	ffmpegPublish(t, 60, "flv", base+"/live/secure")
	waitStream(t, srv.Hub(), "secure", 10*time.Second)
	if got := probeStreams(t, base+"/secure"); strings.Join(got, ",") != "h264,aac" {
		t.Fatalf("ffprobe over RTMPS sees %v, want h264 and aac", got)
	}
}

// TestRTMPToHLS: an RTMP publisher's H264 and AAC (passed through, not
// transcoded) are served as LL-HLS.
func TestRTMPToHLS(t *testing.T) {
	needTool(t, "ffmpeg")
	needTool(t, "ffprobe")
	srv := startEdgeServer(t, nil)
	ffmpegPublish(t, 60, "flv", "rtmp://"+srv.RTMPAddr().String()+"/live/tohls")
	waitStream(t, srv.Hub(), "tohls", 10*time.Second)
	// ffprobe lists each stream once per variant playlist.
	got := probeUntil(t, srv.base+"/hls/tohls/index.m3u8", 20*time.Second)
	if !slices.Contains(got, "h264") || !slices.Contains(got, "aac") {
		t.Fatalf("LL-HLS of an RTMP stream: ffprobe sees %v, want h264 and aac", got)
	}
}
