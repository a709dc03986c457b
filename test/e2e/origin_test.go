package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// streamOrigin is GET /v1/streams' origin of a stream.
type streamOrigin struct {
	Protocol string `json:"protocol"`
	Remote   string `json:"remote"`
	Pulled   bool   `json:"pulled"`
}

// listOrigins is GET /v1/streams: each live stream's origin (nil where
// the API shows none).
func listOrigins(t *testing.T, base string) map[string]*streamOrigin {
	t.Helper()
	code, body := httpGet(t, base+"/v1/streams")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/streams: %d %s", code, body)
	}
	var list struct {
		Streams []struct {
			Name   string        `json:"name"`
			Live   bool          `json:"live"`
			Origin *streamOrigin `json:"origin"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("GET /v1/streams: %v: %s", err, body)
	}
	out := map[string]*streamOrigin{}
	for _, s := range list.Streams {
		if s.Live {
			out[s.Name] = s.Origin
		}
	}
	return out
}

// TestStreamOrigin: GET /v1/streams says how each stream comes in, for
// the console: RTSP, RTMP and SRT publishers (ffmpeg) are "rtsp", "rtmp"
// and "srt" from their addresses, a pion WHIP publisher "whip" from its, a
// configured RTSP source "rtsp" pulled from the camera's host:port.
func TestStreamOrigin(t *testing.T) {
	needFFmpeg(t)
	cam := startCamera(t, cameraOptions{})
	n := startNode(t, func(c *config.Config) {
		c.Sources = []config.Source{{Stream: "pulled", URL: cam.url("", ""), Transport: "tcp"}}
	}, nodeOptions{closeWithin: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	ff := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=160x120:rate=25", "-t", "20",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "25", "-tune", "zerolatency",
		"-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+n.RTSPAddr().String()+"/ff")
	var out strings.Builder
	ff.Stdout, ff.Stderr = &out, &out
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ff.Wait() }()
	defer cancel()

	ffmpegPublish(t, 20, "flv", "rtmp://"+n.RTMPAddr().String()+"/live/rt")
	ffmpegPublish(t, 20, "mpegts", srtURL(n, "publish:srt", "&pkt_size=1316"))

	pub, err := client.Publish(ctx, n.base+"/whip/w", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)

	addr := regexp.MustCompile(`^127\.0\.0\.1:\d+$`)
	var got map[string]*streamOrigin
	for {
		got = listOrigins(t, n.base)
		if got["ff"] != nil && got["w"] != nil && got["pulled"] != nil && got["rt"] != nil && got["srt"] != nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("origins %v: not every stream live with one (ffmpeg: %s)", got, out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if o := got["ff"]; o.Protocol != "rtsp" || !addr.MatchString(o.Remote) || o.Pulled {
		t.Errorf("RTSP publisher's origin %+v, want rtsp from 127.0.0.1:port, not pulled", *o)
	}
	if o := got["w"]; o.Protocol != "whip" || !addr.MatchString(o.Remote) || o.Pulled {
		t.Errorf("WHIP publisher's origin %+v, want whip from 127.0.0.1:port, not pulled", *o)
	}
	for name, proto := range map[string]string{"rt": "rtmp", "srt": "srt"} {
		if o := got[name]; o.Protocol != proto || !addr.MatchString(o.Remote) || o.Pulled {
			t.Errorf("%s publisher's origin %+v, want %s from 127.0.0.1:port, not pulled", proto, *o, proto)
		}
	}
	if o := got["pulled"]; o.Protocol != "rtsp" || o.Remote != cam.addr || !o.Pulled {
		t.Errorf("pulled source's origin %+v, want rtsp pulled from %s", *o, cam.addr)
	}
}
