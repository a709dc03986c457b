package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/transcode"
)

// needFFprobe returns the path of ffprobe, or skips the test when it is
// missing, unless SLUICE_TEST_REQUIRE_FFPROBE is set (scripts/test.sh sets it
// after installing ffmpeg).
func needFFprobe(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("ffprobe")
	if err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_FFPROBE") != "" {
			t.Fatalf("ffprobe required (SLUICE_TEST_REQUIRE_FFPROBE is set): %v", err)
		}
		t.Skipf("ffprobe not found (apt-get install ffmpeg, or run scripts/test.sh): %v", err)
	}
	return p
}

// wantAAC reports whether outputs carry AAC: where this binary can
// transcode (required when scripts/test.sh installed the libraries).
func wantAAC(t testing.TB) bool {
	t.Helper()
	if err := transcode.Available(); err != nil {
		if os.Getenv("SLUICE_TEST_REQUIRE_TRANSCODE") != "" {
			t.Fatal(err)
		}
		t.Logf("video only: %v", err)
		return false
	}
	return true
}

// probe is what ffprobe says about a file.
type probe struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
		StartTime  string `json:"start_time"`
		Duration   string `json:"duration"`
		NbFrames   string `json:"nb_read_frames"`
	} `json:"streams"`
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
}

// ffprobe probes a file, counting its frames, and fails the test if
// ffprobe finds it invalid.
func ffprobe(t testing.TB, bin, path string) probe {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-count_frames", "-show_streams", "-show_format",
		"-of", "json", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v: %s", path, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, out)
	}
	return p
}

// seconds parses one of ffprobe's decimal strings.
func seconds(t testing.TB, s string) time.Duration {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("ffprobe time %q: %v", s, err)
	}
	return time.Duration(f * float64(time.Second))
}

// httpGet fetches a URL and returns status and body.
func httpGet(t testing.TB, url string) (int, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, b
}

// mediaPlaylist fetches and parses a media playlist.
func mediaPlaylist(t testing.TB, url string) *playlist.Media {
	t.Helper()
	code, body := httpGet(t, url)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	pl, err := playlist.Unmarshal(body)
	if err != nil {
		t.Fatalf("%s: %v\n%s", url, err, body)
	}
	m, ok := pl.(*playlist.Media)
	if !ok {
		t.Fatalf("%s is not a media playlist:\n%s", url, body)
	}
	return m
}

// fullSegments returns the playlist's complete, non-gap segments.
func fullSegments(m *playlist.Media) []*playlist.MediaSegment {
	var out []*playlist.MediaSegment
	for _, s := range m.Segments {
		if !s.Gap {
			out = append(out, s)
		}
	}
	return out
}

// TestHLS publishes the clip (H264, and Opus made AAC where transcoding is
// available) with pion and reads the stream as LL-HLS over HTTP: the
// multivariant playlist names H264 and AAC, the media playlists have
// parts, and each segment, with its init file, is a valid fMP4 that
// ffprobe reads as H264 320x240 and AAC 48 kHz, one GOP (1 s) long, with
// the audio and video of one segment starting within 50 ms of each other.
func TestHLS(t *testing.T) {
	bin := needFFprobe(t)
	aac := wantAAC(t)
	base := startServer(t, func(c *config.Config) {
		c.HLS.SegmentDuration = time.Second
		c.HLS.PartDuration = 200 * time.Millisecond
	})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/hls", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	<-f.sentAU(1)

	// The first request starts the muxer and waits for its first segment.
	hlsBase := base + "/hls/hls/"
	code, body := httpGet(t, hlsBase+"index.m3u8")
	if code != http.StatusOK {
		t.Fatalf("index.m3u8: %d %s", code, body)
	}
	pl, err := playlist.Unmarshal(body)
	if err != nil {
		t.Fatalf("index.m3u8: %v\n%s", err, body)
	}
	mv, ok := pl.(*playlist.Multivariant)
	if !ok || len(mv.Variants) != 1 {
		t.Fatalf("index.m3u8 is not a multivariant playlist with one variant:\n%s", body)
	}
	codecs := strings.Join(mv.Variants[0].Codecs, ",")
	if !strings.Contains(codecs, "avc1.42") || aac != strings.Contains(codecs, "mp4a.40.2") {
		t.Errorf("CODECS=%q, want avc1 (constrained baseline) and, with transcoding, mp4a.40.2", codecs)
	}
	if mv.Variants[0].Resolution != "320x240" {
		t.Errorf("RESOLUTION=%q, want 320x240", mv.Variants[0].Resolution)
	}
	videoURI := mv.Variants[0].URI
	var audioURI string
	for _, r := range mv.Renditions {
		if r.Type == playlist.MultivariantRenditionTypeAudio && r.URI != nil {
			audioURI = *r.URI
		}
	}
	if aac != (audioURI != "") {
		t.Fatalf("audio rendition %q, want one iff transcoding is available:\n%s", audioURI, body)
	}

	// Wait for three complete segments.
	var video *playlist.Media
	for {
		video = mediaPlaylist(t, hlsBase+videoURI)
		if len(fullSegments(video)) >= 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("fewer than 3 segments in time:\n%+v", video)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if video.PartInf == nil || video.ServerControl == nil || !video.ServerControl.CanBlockReload {
		t.Errorf("media playlist without EXT-X-PART-INF / CAN-BLOCK-RELOAD: not LL-HLS")
	}
	parts := len(video.Parts)
	for _, s := range video.Segments {
		parts += len(s.Parts)
	}
	if parts == 0 {
		t.Errorf("media playlist lists no parts")
	}
	if video.Map == nil {
		t.Fatal("media playlist without EXT-X-MAP")
	}

	dir := t.TempDir()
	segs := fullSegments(video)
	// Segments 2 and 3: the first starts wherever the muxer joined.
	for i, seg := range segs[1:3] {
		if d := seg.Duration; d < 950*time.Millisecond || d > 1050*time.Millisecond {
			t.Errorf("segment %s lasts %v, want 1 s (one GOP)", seg.URI, d)
		}
		vpath := fetchFMP4(t, hlsBase, video.Map.URI, seg.URI, filepath.Join(dir, fmt.Sprintf("v%d.mp4", i)))
		vp := ffprobe(t, bin, vpath)
		if len(vp.Streams) != 1 || vp.Streams[0].CodecName != "h264" || vp.Streams[0].Width != 320 || vp.Streams[0].Height != 240 {
			t.Fatalf("video segment %s: %+v, want one h264 320x240 stream", seg.URI, vp.Streams)
		}
		if n, _ := strconv.Atoi(vp.Streams[0].NbFrames); n != clipGOP {
			t.Errorf("video segment %s has %s frames, want %d", seg.URI, vp.Streams[0].NbFrames, clipGOP)
		}
		// ffprobe's format duration is the end time: the fragments keep
		// their place on the stream's timeline.
		vs := seconds(t, vp.Streams[0].StartTime)
		vd := seconds(t, vp.Format.Duration) - vs
		if math.Abs(float64(vd-seg.Duration)) > float64(50*time.Millisecond) {
			t.Errorf("video segment %s: ffprobe duration %v, playlist %v", seg.URI, vd, seg.Duration)
		}
		if !aac {
			continue
		}
		audio := mediaPlaylist(t, hlsBase+audioURI)
		var aseg *playlist.MediaSegment
		for _, s := range audio.Segments {
			if strings.Replace(s.URI, "audio", "video", 1) == strings.Replace(seg.URI, "audio", "video", 1) ||
				strings.HasSuffix(s.URI, seg.URI[strings.Index(seg.URI, "_seg"):]) {
				aseg = s
			}
		}
		if aseg == nil {
			t.Fatalf("no audio segment for %s in\n%+v", seg.URI, audio.Segments)
		}
		apath := fetchFMP4(t, hlsBase, audio.Map.URI, aseg.URI, filepath.Join(dir, fmt.Sprintf("a%d.mp4", i)))
		ap := ffprobe(t, bin, apath)
		if len(ap.Streams) != 1 || ap.Streams[0].CodecName != "aac" || ap.Streams[0].SampleRate != "48000" {
			t.Fatalf("audio segment %s: %+v, want one aac 48 kHz stream", aseg.URI, ap.Streams)
		}
		as := seconds(t, ap.Streams[0].StartTime)
		ad := seconds(t, ap.Format.Duration) - as
		if math.Abs(float64(ad-vd)) > float64(50*time.Millisecond) {
			t.Errorf("segment %d: audio lasts %v, video %v", i+2, ad, vd)
		}
		if d := as - vs; d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("segment %d: audio starts at %v, video at %v: %v apart, want within 50 ms", i+2, as, vs, d)
		} else {
			t.Logf("segment %d: video %v from %v, audio %v from %v (%v apart)", i+2, vd, vs, ad, as, d)
		}
	}

	// Files the muxer does not have, and streams nobody publishes.
	if code, _ := httpGet(t, hlsBase+"nope.mp4"); code != http.StatusNotFound {
		t.Errorf("unknown file: %d, want 404", code)
	}
	if code, _ := httpGet(t, base+"/hls/nobody/index.m3u8"); code != http.StatusNotFound {
		t.Errorf("unpublished stream: %d, want 404", code)
	}
}

// fetchFMP4 writes an init file and a segment, one after the other, to
// path: a file ffprobe can read.
func fetchFMP4(t testing.TB, base, initURI, segURI, path string) string {
	t.Helper()
	var data []byte
	for _, u := range []string{initURI, segURI} {
		code, body := httpGet(t, base+u)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", u, code, body)
		}
		data = append(data, body...)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestHLSAuth: HLS needs the read action like WHEP, on the playlist and
// on every file; a token in the query is passed on by the playlists.
func TestHLSAuth(t *testing.T) {
	base := startServer(t, func(c *config.Config) {
		c.Auth = auth.Config{Default: auth.ModeDeny, Rules: []auth.RuleConfig{{Mode: auth.ModeStatic, Tokens: []auth.StaticToken{
			{Token: "pub-token", Actions: []string{"publish"}},
			{Token: "read-token", Actions: []string{"read"}},
		}}}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/sec", client.PublishOptions{Token: "pub-token"})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	<-f.sentAU(1)

	if code, _ := httpGet(t, base+"/hls/sec/index.m3u8"); code != http.StatusUnauthorized {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := httpGet(t, base+"/hls/sec/index.m3u8?token=pub-token"); code != http.StatusForbidden {
		t.Errorf("publish-only token: %d, want 403", code)
	}
	code, body := httpGet(t, base+"/hls/sec/index.m3u8?token=read-token")
	if code != http.StatusOK {
		t.Fatalf("read token: %d %s", code, body)
	}
	if !strings.Contains(string(body), "?token=read-token") {
		t.Errorf("playlist does not pass the token on:\n%s", body)
	}
	if code, _ := httpGet(t, base+"/hls/sec/video1_stream.m3u8"); code != http.StatusUnauthorized {
		t.Errorf("media playlist without token: %d, want 401", code)
	}
}

// TestHLSH265 publishes the H265 clip (no audio): the playlist names
// hvc1 and a segment is valid HEVC for ffprobe.
func TestHLSH265(t *testing.T) {
	bin := needFFprobe(t)
	clip := loadH265Clip(t)
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/hevc", client.PublishOptions{H265: true, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	fctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	defer func() { stop(); <-done }()
	go func() {
		defer close(done)
		start := time.Now()
		for i := 0; ; i++ {
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

	hlsBase := base + "/hls/hevc/"
	code, body := httpGet(t, hlsBase+"index.m3u8")
	if code != http.StatusOK || !strings.Contains(string(body), "hvc1.") {
		t.Fatalf("index.m3u8: %d, want CODECS with hvc1:\n%s", code, body)
	}
	var video *playlist.Media
	for {
		video = mediaPlaylist(t, hlsBase+"video1_stream.m3u8")
		if len(fullSegments(video)) >= 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("fewer than 2 segments in time")
		case <-time.After(200 * time.Millisecond):
		}
	}
	seg := fullSegments(video)[1]
	p := ffprobe(t, bin, fetchFMP4(t, hlsBase, video.Map.URI, seg.URI, filepath.Join(t.TempDir(), "h265.mp4")))
	if len(p.Streams) != 1 || p.Streams[0].CodecName != "hevc" || p.Streams[0].Width != 320 {
		t.Fatalf("segment %s: %+v, want one hevc 320x240 stream", seg.URI, p.Streams)
	}
	if n, _ := strconv.Atoi(p.Streams[0].NbFrames); n != clipGOP {
		t.Errorf("segment %s has %s frames, want %d", seg.URI, p.Streams[0].NbFrames, clipGOP)
	}
}
