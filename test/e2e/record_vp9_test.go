package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// vp9Clip reads testdata's VP9 clip (IVF, libvpx) into its frames.
func vp9Clip(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vp9_profile0_320x240_25fps_3s.ivf"))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := ivfreader.NewWith(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		f, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, f)
	}
	if len(frames) != 75 {
		t.Fatalf("clip has %d frames, want 75", len(frames))
	}
	return frames
}

// vp9Codec is VP9 profile 0 as Chromium offers it.
var vp9Codec = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: vp9av1Feedback}, PayloadType: 98}

// feedVP9 sends the clip on track at 25 fps, looping, for at most n frames
// (packetized by gortsplib's VP9 encoder), until the returned stop is
// called; stop waits for the sender.
func feedVP9(t *testing.T, ctx context.Context, track *webrtc.TrackLocalStaticRTP, clip [][]byte, n int) (stop func()) {
	t.Helper()
	enc := &rtpvp9.Encoder{PayloadType: uint8(vp9Codec.PayloadType)}
	if err := enc.Init(); err != nil {
		t.Fatal(err)
	}
	return feedFrames(ctx, n, func(i int) ([]*rtp.Packet, error) {
		pkts, err := enc.Encode(clip[i%len(clip)])
		for _, p := range pkts {
			p.Timestamp = uint32(i * 3600)
		}
		return pkts, err
	}, func(p *rtp.Packet) error { return track.WriteRTP(p) }, t.Error)
}

// feedFrames writes the packets of frame 0, 1, … n-1, one frame per
// frameDuration, until ctx is done, a write fails or stop is called.
func feedFrames(ctx context.Context, n int, frame func(i int) ([]*rtp.Packet, error), write func(*rtp.Packet) error, fail func(...any)) (stop func()) {
	fed := make(chan struct{})
	feedCtx, cancel := context.WithCancel(ctx)
	go func() {
		defer close(fed)
		start := time.Now()
		for i := 0; i < n; i++ {
			pkts, err := frame(i)
			if err != nil {
				fail(err)
				return
			}
			for _, p := range pkts {
				if err := write(p); err != nil {
					return
				}
			}
			select {
			case <-feedCtx.Done():
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * frameDuration))):
			}
		}
	}()
	return func() { cancel(); <-fed }
}

// TestRecordVP9: a VP9 publisher (libvpx frames, packetized by gortsplib's
// VP9 encoder) is recorded to fMP4 files that ffprobe reads as VP9 of the
// published size, with every frame of the segment.
func TestRecordVP9(t *testing.T) {
	bin := needFFprobe(t)
	clip := vp9Clip(t)
	dir := t.TempDir()
	base := startServer(t, func(c *config.Config) {
		c.Record.Rules = []record.Rule{{Streams: "vp9-*", Dir: dir, Segment: time.Second}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	track, status, body := rawPublisher(t, base+"/whip/vp9-cam", []webrtc.RTPCodecParameters{vp9Codec})
	if status != 201 {
		t.Fatalf("WHIP POST: %d %s", status, body)
	}
	defer feedVP9(t, ctx, track, clip, 500)()

	var files []string
	for len(files) < 2 {
		select {
		case <-ctx.Done():
			t.Fatalf("files after 25 s: %v", files)
		case <-time.After(100 * time.Millisecond):
		}
		files = recordings(t, dir)
	}
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_name,profile,width,height,nb_read_frames", "-of", "json", files[0]).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", files[0], err)
	}
	var probe struct {
		Streams []struct {
			CodecName    string `json:"codec_name"`
			Profile      string `json:"profile"`
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe output %s: %v", out, err)
	}
	s := probe.Streams[0]
	t.Logf("%s: %+v", filepath.Base(files[0]), s)
	frames, _ := strconv.Atoi(s.NbReadFrames)
	// The first file runs from the first key frame to the first key frame
	// a second (a segment) later: every 25 frames in the clip.
	if s.CodecName != "vp9" || s.Profile != "Profile 0" || s.Width != 320 || s.Height != 240 || frames != clipGOP {
		t.Errorf("%s: %+v, want vp9 Profile 0 320x240 with %d frames", files[0], s, clipGOP)
	}
}

// TestHLSVP9: the same VP9 publisher is served as LL-HLS (vp09 in the
// multivariant playlist), whose fMP4 segments ffprobe reads as VP9 of the
// published size, one group of pictures each.
func TestHLSVP9(t *testing.T) {
	bin := needFFprobe(t)
	clip := vp9Clip(t)
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	track, status, body := rawPublisher(t, base+"/whip/vp9hls", []webrtc.RTPCodecParameters{vp9Codec})
	if status != 201 {
		t.Fatalf("WHIP POST: %d %s", status, body)
	}
	defer feedVP9(t, ctx, track, clip, 500)()

	// The API reads the size from the key frames' headers on ingest.
	var info struct {
		Tracks []struct {
			Codec string `json:"codec"`
			Video *struct {
				Width   int    `json:"width"`
				Height  int    `json:"height"`
				Profile string `json:"profile"`
			} `json:"video"`
		} `json:"tracks"`
	}
	for len(info.Tracks) == 0 || info.Tracks[0].Video == nil {
		code, _, body := do(t, http.MethodGet, base+"/v1/streams/vp9hls", "", nil)
		if code == http.StatusOK {
			if err := json.Unmarshal([]byte(body), &info); err != nil {
				t.Fatalf("GET /v1/streams/vp9hls: %v: %s", err, body)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no video info in the API: %d %s", code, body)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if v := info.Tracks[0].Video; len(info.Tracks) != 1 || v.Width != 320 || v.Height != 240 || v.Profile != "0" {
		t.Errorf("API video info %+v, want 320x240 profile 0", *v)
	}

	hlsBase := base + "/hls/vp9hls/"
	code, index := httpGet(t, hlsBase+"index.m3u8")
	if code != http.StatusOK || !strings.Contains(string(index), "vp09.") {
		t.Fatalf("index.m3u8: %d, want CODECS with vp09:\n%s", code, index)
	}
	for {
		video := mediaPlaylist(t, hlsBase+"video1_stream.m3u8")
		if segs := fullSegments(video); len(segs) >= 2 {
			seg := segs[1]
			p := ffprobe(t, bin, fetchFMP4(t, hlsBase, video.Map.URI, seg.URI, filepath.Join(t.TempDir(), "vp9.mp4")))
			if len(p.Streams) != 1 || p.Streams[0].CodecName != "vp9" || p.Streams[0].Width != 320 || p.Streams[0].Height != 240 {
				t.Fatalf("segment %s: %+v, want one vp9 320x240 stream", seg.URI, p.Streams)
			}
			if n, _ := strconv.Atoi(p.Streams[0].NbFrames); n != clipGOP {
				t.Errorf("segment %s has %s frames, want %d", seg.URI, p.Streams[0].NbFrames, clipGOP)
			}
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("fewer than 2 segments in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
}
