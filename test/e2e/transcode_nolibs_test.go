package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// lockedBuffer is a process's output, read while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestTranscodeLibrariesMissing: a sluice process that cannot open the
// codec libraries (an unloadable libopus.so.0 first in its
// LD_LIBRARY_PATH, as where libopus0 is not installed) and an AAC source
// (ffmpeg publishing H264 + AAC over RTSP). Two pion WHEP viewers that
// take only Opus audio each get a session and video from a keyframe, and
// no audio; GET /v1/streams/cam says why (`unavailable: …`) on the AAC
// track and lists no Opus track; the log says so once.
func TestTranscodeLibrariesMissing(t *testing.T) {
	needFFmpeg(t)
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "sluice")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/sluice-media/sluice/cmd/sluice").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	libs := filepath.Join(tmp, "lib")
	if err := os.Mkdir(libs, 0o755); err != nil {
		t.Fatal(err)
	}
	// An empty file: dlopen fails ("file too short") as for a missing one.
	if err := os.WriteFile(filepath.Join(libs, "libopus.so.0"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	why := "libopus.so.0" // what the reason names
	if os.Getenv("CGO_ENABLED") == "0" {
		why = "without cgo" // the other way a binary lacks them
	}
	httpPort, rtspPort := freeLoopbackPort(t), freeLoopbackPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	cmd := exec.Command(bin,
		"-http.listen", fmt.Sprintf("127.0.0.1:%d", httpPort),
		"-webrtc.udp_port", "0", "-webrtc.listen_ips", "127.0.0.1",
		"-rtsp.listen", fmt.Sprintf("127.0.0.1:%d", rtspPort), "-rtsp.udp_rtp_port", "0", "-rtsp.udp_rtcp_port", "0",
		"-rtmp.listen", "127.0.0.1:0", "-srt.listen", "127.0.0.1:0")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") && !strings.HasPrefix(kv, "LD_LIBRARY_PATH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LD_LIBRARY_PATH="+libs)
	var log lockedBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("sluice did not stop within 10 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("sluice log:\n%s", log.String())
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	poll := func(what string, ok func() bool) {
		t.Helper()
		for !ok() {
			select {
			case err := <-exited:
				exited <- err
				t.Fatalf("sluice exited (%v) waiting for %s", err, what)
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	get := func(path string) (int, []byte) {
		resp, err := hc.Get(base + path)
		if err != nil {
			return 0, nil
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return resp.StatusCode, b.Bytes()
	}
	poll("sluice to serve", func() bool { code, _ := get("/healthz"); return code == http.StatusOK })

	ff := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "30", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "25", "-tune", "zerolatency",
		"-c:a", "aac", "-f", "rtsp", "-rtsp_transport", "tcp", fmt.Sprintf("rtsp://127.0.0.1:%d/cam", rtspPort))
	var ffOut lockedBuffer
	ff.Stdout, ff.Stderr = &ffOut, &ffOut
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ff.Wait() }()
	defer cancel()

	type track struct {
		Kind        string `json:"kind"`
		Codec       string `json:"codec"`
		Transcode   string `json:"transcode"`
		DerivedFrom *int   `json:"derived_from"`
	}
	var tracks []track
	poll("the stream with its two tracks", func() bool {
		code, body := get("/v1/streams/cam")
		var info struct {
			Tracks []track `json:"tracks"`
		}
		if code != http.StatusOK || json.Unmarshal(body, &info) != nil {
			return false
		}
		tracks = info.Tracks
		return len(tracks) >= 2
	})
	if len(tracks) != 2 || tracks[0].Kind != "video" || tracks[1].Kind != "audio" {
		t.Fatalf("tracks %+v, want video and audio, no derived track", tracks)
	}
	if a := tracks[1]; !strings.HasPrefix(a.Transcode, "unavailable: ") || !strings.Contains(a.Transcode, why) {
		t.Errorf("AAC track %+v: transcode %q, want unavailable: … saying %s", a, a.Transcode, why)
	}

	for i := range 2 {
		var mu sync.Mutex
		audioPkts := 0
		v, err := client.View(ctx, base+"/whep/cam", client.ViewOptions{
			VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42c01f", 1)},
			OnRTP: func(kind webrtc.RTPCodecType, _ *rtp.Packet) {
				if kind == webrtc.RTPCodecTypeAudio {
					mu.Lock()
					audioPkts++
					mu.Unlock()
				}
			},
		})
		if err != nil {
			t.Fatalf("viewer %d: %v (ffmpeg: %s)", i, err, ffOut.String())
		}
		for n := range 25 { // a second of video, from a keyframe
			select {
			case au := <-v.AccessUnits():
				if n == 0 && !client.IsIDR(au.NALUs) {
					t.Errorf("viewer %d: first access unit is not a keyframe", i)
				}
			case <-v.Done():
				t.Fatalf("viewer %d: the session ended after %d access units", i, n)
			case <-ctx.Done():
				t.Fatalf("viewer %d: %d access units (ffmpeg: %s)", i, n, ffOut.String())
			}
		}
		mu.Lock()
		got := audioPkts
		mu.Unlock()
		if got != 0 {
			t.Errorf("viewer %d: %d audio packets, want none", i, got)
		}
		if st := v.ICEConnectionState(); st != webrtc.ICEConnectionStateConnected && st != webrtc.ICEConnectionStateCompleted {
			t.Errorf("viewer %d: ICE %s", i, st)
		}
		_ = v.Close()
	}
	var said []string
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, "audio transcoding unavailable") {
			said = append(said, l)
		}
	}
	if len(said) != 1 || !strings.Contains(said[0], why) {
		t.Errorf("log lines saying audio transcoding is unavailable: %q, want one saying %s", said, why)
	}
}
