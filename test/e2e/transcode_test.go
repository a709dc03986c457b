package e2e

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gohlslib/v2/pkg/playlist"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/transcode"
)

// needTranscode skips a test that needs the codec libraries where they
// are missing, unless scripts/test.sh, having installed them, requires
// them (SLUICE_TEST_REQUIRE_TRANSCODE).
func needTranscode(t *testing.T) {
	t.Helper()
	if !wantAAC(t) {
		t.Skip("transcoding unavailable")
	}
}

// viewAudio runs a viewer of the stream for about 3 s of media and
// returns what it got. opusOnly offers Opus as the only audio codec (and
// H264); else pion's default set (Opus, G.722, PCMU, PCMA), like a
// browser.
func viewAudio(ctx context.Context, t *testing.T, url string, opusOnly bool, during ...func()) *audioSeen {
	t.Helper()
	seen := &audioSeen{}
	opts := client.ViewOptions{OnRTP: seen.onRTP, OnRTCP: seen.onRTCP}
	if opusOnly {
		opts.VideoCodecs = []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}
	}
	v, err := client.View(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	go drain(v)
	deadline := time.After(10 * time.Second)
	for {
		seen.mu.Lock()
		n, srs := len(seen.pkts), len(seen.srs)
		seen.mu.Unlock()
		if n >= 150 && srs == 2 { // 3 s of 20 ms packets, and reports of both tracks
			for _, f := range during {
				f()
			}
			return seen
		}
		select {
		case <-deadline:
			t.Fatalf("after 10 s: %d audio packets, sender reports of %d tracks", n, srs)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkTone measures the decoded tone: in each burst (from its onset) 440
// Hz (660 Hz on the right) at -9 dBFS RMS, and where the burst sits on the
// wall clock by the audio's sender report against the video's: both must
// put stream time t at t0+t, audio within 40 ms (the video within 5 ms,
// its frames on the 40 ms grid, within videoTol).
func checkTone(t *testing.T, seen *audioSeen, src *hubSource, ch, rate int, g711 bool, videoTol time.Duration) {
	t.Helper()
	pcm, ts0 := seen.pcm(t, ch, g711)
	starts := onsets(pcm, ch, rate)
	if len(starts) < 2 {
		t.Fatalf("%d tone onsets in %.1f s of audio", len(starts), float64(len(pcm)/ch)/float64(rate))
	}
	seen.mu.Lock()
	srA, srV := seen.srs[webrtc.RTPCodecTypeAudio], seen.srs[webrtc.RTPCodecTypeVideo]
	video := append([]uint32(nil), seen.video...)
	seen.mu.Unlock()
	var worstV time.Duration
	for _, ts := range video {
		if e := gridError(wallOf(srV, ts, 90000).Sub(src.t0), 40*time.Millisecond); e.Abs() > worstV.Abs() {
			worstV = e
		}
	}
	if worstV.Abs() > videoTol {
		t.Errorf("video frames sit %v off their stream time by the sender reports", worstV)
	}
	for _, at := range starts {
		from, to := at+rate/10, at+rate/2 // inside the 600 ms burst
		if to*ch > len(pcm) {
			continue
		}
		for c := range ch {
			x := make([]float64, 0, to-from)
			for i := from; i < to; i++ {
				x = append(x, float64(pcm[i*ch+c]))
			}
			want := 440.0
			if c == 1 {
				want = 660
			}
			if hz := crossingHz(x, rate); math.Abs(hz-want) > 3 {
				t.Errorf("burst at %d, channel %d: %.1f Hz, want %.0f", at, c, hz, want)
			}
			if db := rms(x); math.Abs(db-(toneLevel-3.01)) > 1.5 {
				t.Errorf("burst at %d, channel %d: %.1f dBFS RMS, want %.1f", at, c, db, toneLevel-3.01)
			}
		}
		off := gridError(wallOf(srA, ts0+uint32(at), rate).Sub(src.t0), time.Second)
		t.Logf("tone onset at %v of stream time (A/V offset %v; video %v)", wallOf(srA, ts0+uint32(at), rate).Sub(src.t0), off-worstV, worstV)
		if (off - worstV).Abs() > 40*time.Millisecond {
			t.Errorf("audio sits %v off the video by the sender reports, want within 40 ms", off-worstV)
		}
	}
}

func rms(x []float64) float64 {
	s := 0.0
	for _, v := range x {
		s += v * v
	}
	return 10 * math.Log10(s/float64(len(x))+1e-20)
}

func crossingHz(x []float64, rate int) float64 {
	first, last, n := -1.0, -1.0, 0
	for i := 1; i < len(x); i++ {
		if x[i-1] < 0 && x[i] >= 0 {
			pos := float64(i-1) + x[i-1]/(x[i-1]-x[i])
			if first < 0 {
				first = pos
			} else {
				n++
			}
			last = pos
		}
	}
	if n == 0 {
		return 0
	}
	return float64(n) * float64(rate) / (last - first)
}

// streamTracks is GET /v1/streams/{name}'s tracks.
func streamTracks(t *testing.T, base, name string) []map[string]any {
	t.Helper()
	code, body := httpGet(t, base+"/v1/streams/"+name)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/streams/%s: %d %s", name, code, body)
	}
	var info struct {
		Tracks []map[string]any `json:"tracks"`
	}
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	return info.Tracks
}

// TestTranscodeAACToOpus: an AAC-LC stereo stream (as RTMP, SRT and RTSP
// cameras publish) gets an Opus track that a WebRTC viewer offering only
// Opus receives: decoded with libopus it is the source's tone, stereo, at
// its level, and in sync with the video by the sender reports.
func TestTranscodeAACToOpus(t *testing.T) {
	needTranscode(t)
	srv := startEdgeServer(t, func(c *config.Config) { c.Transcode.IdleClose = 300 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	src := startHubSource(ctx, t, srv.Hub(), "aac", aacStereo, true)
	defer func() { cancel(); <-src.done }()
	<-src.st.Ready()

	tracks := streamTracks(t, srv.base, "aac")
	if len(tracks) != 5 || tracks[1]["transcode"] != "opus, pcmu, pcma" || tracks[2]["codec"] != "opus" || tracks[2]["derived_from"] != 1.0 ||
		!strings.Contains(tracks[2]["fmtp"].(string), "sprop-stereo=1") || tracks[3]["codec"] != "PCMU" || tracks[4]["codec"] != "PCMA" {
		t.Fatalf("tracks %v, want H264, AAC, and a stereo Opus, a PCMU and a PCMA track derived from the AAC", tracks)
	}
	const running = `sluice_transcoders{from="aac",to="opus"}`
	if s := scrapeMetrics(t, srv.base); s.get(running) != 0 {
		t.Fatalf("%s = %v before any viewer, want 0", running, s.get(running))
	}
	seen := viewAudio(ctx, t, srv.base+"/whep/aac", true, func() {
		if s := scrapeMetrics(t, srv.base); s.get(running) != 1 {
			t.Errorf("%s = %v with a viewer, want 1", running, s.get(running))
		}
	})
	if seen.pt != 111 {
		t.Fatalf("audio payload type %d, want Opus (111)", seen.pt)
	}
	checkTone(t, seen, src, 2, transcode.SampleRate, false, 5*time.Millisecond)
	// The viewer has left: the transcoder stops idle_close later.
	waitMetrics(t, srv.base, "the transcoder stopped after its viewer", func(s metricSamples) bool { return s.get(running) == 0 })
}

// TestTranscodePCMA: a G.711 A-law stream goes to a viewer that offers
// PCMA as it is, and to one that offers only Opus as Opus; both hear the
// tone, in sync with the video.
func TestTranscodePCMA(t *testing.T) {
	needTranscode(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	src := startHubSource(ctx, t, srv.Hub(), "pcma", pcmaMono, true)
	defer func() { cancel(); <-src.done }()
	<-src.st.Ready()

	t.Run("opus", func(t *testing.T) {
		seen := viewAudio(ctx, t, srv.base+"/whep/pcma", true)
		if seen.pt != 111 {
			t.Fatalf("audio payload type %d, want Opus (111)", seen.pt)
		}
		checkTone(t, seen, src, 1, transcode.SampleRate, false, 5*time.Millisecond)
	})
	t.Run("pcma", func(t *testing.T) {
		seen := viewAudio(ctx, t, srv.base+"/whep/pcma", false)
		if seen.pt != 8 {
			t.Fatalf("audio payload type %d, want PCMA (8)", seen.pt)
		}
		checkTone(t, seen, src, 1, 8000, true, 5*time.Millisecond)
	})
}

// TestTranscodeHLS: LL-HLS of an AAC stream carries its AAC, and of a
// G.711 stream AAC transcoded from it; ffprobe reads a segment of each.
func TestTranscodeHLS(t *testing.T) {
	needTranscode(t)
	bin := needFFprobe(t)
	srv := startEdgeServer(t, nil)
	for _, c := range []struct {
		name     string
		kind     audioKind
		channels int
	}{{"aac", aacStereo, 2}, {"pcma", pcmaMono, 1}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			src := startHubSource(ctx, t, srv.Hub(), c.name, c.kind, false)
			defer func() { cancel(); <-src.done }()
			<-src.st.Ready()
			hlsBase := srv.base + "/hls/" + c.name + "/"
			code, body := httpGet(t, hlsBase+"index.m3u8")
			if code != http.StatusOK {
				t.Fatalf("index.m3u8: %d %s", code, body)
			}
			pl, err := playlist.Unmarshal(body)
			if err != nil {
				t.Fatal(err)
			}
			mv, ok := pl.(*playlist.Multivariant)
			if !ok || len(mv.Variants) != 1 || !strings.Contains(strings.Join(mv.Variants[0].Codecs, ","), "mp4a.40.2") {
				t.Fatalf("index.m3u8 without AAC:\n%s", body)
			}
			var audioURI string
			for _, r := range mv.Renditions {
				if r.Type == playlist.MultivariantRenditionTypeAudio && r.URI != nil {
					audioURI = *r.URI
				}
			}
			if audioURI == "" {
				t.Fatalf("no audio rendition:\n%s", body)
			}
			var audio *playlist.Media
			for {
				audio = mediaPlaylist(t, hlsBase+audioURI)
				if len(fullSegments(audio)) >= 2 {
					break
				}
				select {
				case <-ctx.Done():
					t.Fatalf("fewer than 2 audio segments in time")
				case <-time.After(200 * time.Millisecond):
				}
			}
			seg := fullSegments(audio)[1]
			path := fetchFMP4(t, hlsBase, audio.Map.URI, seg.URI, filepath.Join(t.TempDir(), "a.mp4"))
			p := ffprobe(t, bin, path)
			if len(p.Streams) != 1 || p.Streams[0].CodecName != "aac" || p.Streams[0].SampleRate != "48000" || p.Streams[0].Channels != c.channels {
				t.Fatalf("audio segment: %+v, want one aac 48 kHz stream with %d channels", p.Streams, c.channels)
			}
		})
	}
}

// TestTranscodeSyncWithoutReports: a source without sender reports (RTMP,
// SRT): viewers' reports of the video come from its packets' send times
// and the Opus track's from the AAC's arrival, so audio and video still
// line up within 40 ms.
func TestTranscodeSyncWithoutReports(t *testing.T) {
	needTranscode(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	src := startHubSource(ctx, t, srv.Hub(), "rtmp", aacStereo, false)
	defer func() { cancel(); <-src.done }()
	<-src.st.Ready()
	seen := viewAudio(ctx, t, srv.base+"/whep/rtmp", true)
	checkTone(t, seen, src, 2, transcode.SampleRate, false, 20*time.Millisecond)
}

// TestTranscodeRTSPFFmpegAAC: ffmpeg publishes H264 and AAC (its sine,
// 440 Hz at 1/8 full scale) over RTSP, as a camera does; a pion WHEP viewer
// offering only Opus decodes its audio to the tone at that level.
func TestTranscodeRTSPFFmpegAAC(t *testing.T) {
	needTranscode(t)
	needFFmpeg(t)
	srv := startRTSPServer(t, false)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ff := exec.CommandContext(ctx, "ffmpeg", "-v", "error", "-re",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "8", "-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "25", "-tune", "zerolatency",
		"-c:a", "aac", "-b:a", "96k", "-f", "rtsp", "-rtsp_transport", "tcp", "rtsp://"+srv.rtsp+"/cam")
	var out strings.Builder
	ff.Stdout, ff.Stderr = &out, &out
	if err := ff.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ff.Wait() }()
	defer cancel()
	seen := &audioSeen{}
	v, err := client.View(ctx, srv.base+"/whep/cam", client.ViewOptions{OnRTP: seen.onRTP,
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42c01f", 1)}})
	if err != nil {
		t.Fatalf("view: %v (ffmpeg: %s)", err, out.String())
	}
	defer v.Close()
	go drain(v)
	for {
		seen.mu.Lock()
		n := len(seen.pkts)
		seen.mu.Unlock()
		if n >= 100 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d audio packets (ffmpeg: %s)", n, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if seen.pt != 111 {
		t.Fatalf("audio payload type %d, want Opus (111)", seen.pt)
	}
	pcm, _ := seen.pcm(t, 1, false)
	x := make([]float64, 0, len(pcm))
	for _, s := range pcm[len(pcm)/3:] { // past the start
		x = append(x, float64(s))
	}
	want := 20*math.Log10(1.0/8) - 3.01
	hz, db := crossingHz(x, transcode.SampleRate), rms(x)
	t.Logf("the viewer decodes %.1f Hz at %.1f dBFS RMS", hz, db)
	if math.Abs(hz-440) > 3 {
		t.Errorf("%.1f Hz, want 440", hz)
	}
	if math.Abs(db-want) > 1.5 {
		t.Errorf("%.1f dBFS RMS, want %.1f", db, want)
	}
}
