package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// TestPlayback records 12 s of a pion publisher in 4 s files, then reads
// it back: the list shows one run of 12 s; a span from the middle and a
// span across file boundaries play as one MP4 each (ffprobe: length, a
// keyframe first, H264 and AAC); range requests answer parts of the same
// file; bad spans are refused with 400 or 404.
func TestPlayback(t *testing.T) {
	bin := needFFprobe(t)
	aac := wantAAC(t)
	dir := t.TempDir()
	base := startServer(t, func(c *config.Config) {
		c.Record.Rules = []record.Rule{{Streams: "cam", Dir: dir, Segment: 4 * time.Second}}
		c.Playback.MaxDuration = time.Minute
	})
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/cam", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	go f.run(fctx)
	<-f.sentAU(1)
	<-f.sentAU(f.count() + 12*clipGOP)
	stop()
	<-f.done
	pub.Close()
	// The files are closed once the stream has ended.
	for st := recordingStatus(t, base, "cam"); st.Recording; st = recordingStatus(t, base, "cam") {
		select {
		case <-ctx.Done():
			t.Fatal("still recording after the publisher left")
		case <-time.After(100 * time.Millisecond):
		}
	}
	files := recordings(t, dir)
	if len(files) < 3 {
		t.Fatalf("files %v, want 3 or 4 of 4 s", files)
	}

	// One run of about 12 s, in the list of all streams and of cam.
	var all struct {
		Recordings []record.Recording `json:"recordings"`
	}
	if code := getJSON(t, base+"/v1/recordings", "", &all); code != http.StatusOK {
		t.Fatalf("GET /v1/recordings: %d", code)
	}
	if len(all.Recordings) != 1 || all.Recordings[0].Stream != "cam" {
		t.Fatalf("GET /v1/recordings: %+v", all)
	}
	var rec record.Recording
	if code := getJSON(t, base+"/v1/recordings/cam", "", &rec); code != http.StatusOK {
		t.Fatalf("GET /v1/recordings/cam: %d", code)
	}
	if len(rec.Segments) != 1 {
		t.Fatalf("segments %+v for files %v, want one run", rec.Segments, files)
	}
	seg := rec.Segments[0]
	if seg.Duration < 11 || seg.Duration > 13.5 || seg.Bytes <= 0 {
		t.Errorf("segment %+v, want about 12 s", seg)
	}
	if time.Since(seg.Start) > 30*time.Second || time.Since(seg.Start) < 12*time.Second {
		t.Errorf("segment starts %v ago", time.Since(seg.Start))
	}

	play := func(from, dur float64) string {
		start := seg.Start.Add(time.Duration(from * float64(time.Second))).Format(time.RFC3339Nano)
		return fmt.Sprintf("%s/playback/cam.mp4?start=%s&duration=%g", base, url.QueryEscape(start), dur)
	}
	check := func(name, u string, want time.Duration) []byte {
		code, body := httpGet(t, u)
		if code != http.StatusOK {
			t.Fatalf("%s: %d %s", name, code, body)
		}
		p := filepath.Join(t.TempDir(), name+".mp4")
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
		pr := ffprobe(t, bin, p)
		var kinds []string
		for _, s := range pr.Streams {
			kinds = append(kinds, s.CodecType+":"+s.CodecName)
		}
		wantKinds := "video:h264"
		if aac {
			wantKinds += " audio:aac"
		}
		if strings.Join(kinds, " ") != wantKinds {
			t.Errorf("%s: streams %v, want %s", name, kinds, wantKinds)
		}
		if d := seconds(t, pr.Format.Duration); math.Abs(float64(d-want)) > float64(time.Second) {
			t.Errorf("%s: lasts %v, want %v ± 1 s", name, d, want)
		}
		// Decoded frames: the whole span, no gap at the file boundaries.
		for _, s := range pr.Streams {
			if s.CodecType != "video" {
				continue
			}
			var n int
			fmt.Sscan(s.NbFrames, &n)
			if got := time.Duration(n) * frameDuration; math.Abs(float64(got-want)) > float64(time.Second) {
				t.Errorf("%s: %d video frames (%v), want %v ± 1 s", name, n, got, want)
			}
		}
		if flags := firstPacketFlags(t, bin, p); !strings.HasPrefix(flags, "K") {
			t.Errorf("%s: first video packet flags %q, want a keyframe", name, flags)
		}
		return body
	}
	check("middle", play(3.5, 5), 5*time.Second)
	whole := check("across", play(2.5, 8), 8*time.Second) // over the files at 4 s and 8 s

	// Range requests: a part of the same bytes, 206.
	code, hdr, part := getRange(t, play(2.5, 8), "bytes=1000-1999")
	if code != http.StatusPartialContent || !bytes.Equal(part, whole[1000:2000]) ||
		hdr.Get("Content-Range") != fmt.Sprintf("bytes 1000-1999/%d", len(whole)) || hdr.Get("Accept-Ranges") != "bytes" {
		t.Errorf("range request: %d %q, %d bytes (equal: %v)", code, hdr.Get("Content-Range"), len(part), bytes.Equal(part, whole[1000:min(2000, len(whole))]))
	}

	// Bad spans.
	for _, c := range []struct {
		name, url string
		code      int
	}{
		{"no start", base + "/playback/cam.mp4?duration=5", http.StatusBadRequest},
		{"bad start", base + "/playback/cam.mp4?start=yesterday&duration=5", http.StatusBadRequest},
		{"zero duration", play(1, 0), http.StatusBadRequest},
		{"over max_duration", play(1, 61), http.StatusBadRequest},
		{"not a number", strings.Replace(play(1, 5), "duration=5", "duration=five", 1), http.StatusBadRequest},
		{"before the recording", play(-120, 60), http.StatusNotFound},
		{"after the recording", play(600, 5), http.StatusNotFound},
		{"other stream", strings.Replace(play(1, 5), "/cam.mp4", "/nope.mp4", 1), http.StatusNotFound},
		{"no .mp4", strings.Replace(play(1, 5), "/cam.mp4", "/cam", 1), http.StatusBadRequest},
	} {
		code, body := httpGet(t, c.url)
		if code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.code)
		}
	}
}

// getRange GETs part of a URL.
func getRange(t testing.TB, u, rng string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", rng)
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// firstPacketFlags returns ffprobe's flags of a file's first video packet
// ("K_" for a keyframe).
func firstPacketFlags(t testing.TB, bin, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-v", "error", "-select_streams", "v:0", "-show_packets",
		"-read_intervals", "%+#1", "-show_entries", "packet=flags", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe packets %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}
