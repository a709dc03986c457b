package e2e

import (
	"context"
	"encoding/json"
	"io/fs"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
	"github.com/sluice-media/sluice/internal/record"
)

// recordings lists the .mp4 files under dir, oldest name first.
func recordings(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".mp4") {
			out = append(out, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// recordingStatus asks the API about a stream's recording.
func recordingStatus(t testing.TB, base, stream string) record.Status {
	t.Helper()
	code, body := httpGet(t, base+"/v1/streams/"+stream+"/recording")
	if code != http.StatusOK {
		t.Fatalf("GET recording: %d %s", code, body)
	}
	var st record.Status
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// setRecording switches a stream's recording through the API.
func setRecording(t testing.TB, base, stream, body string) (int, record.Status) {
	t.Helper()
	code, _, resp := do(t, http.MethodPost, base+"/v1/streams/"+stream+"/recording", "application/json", strings.NewReader(body))
	var st record.Status
	if code == http.StatusOK {
		if err := json.Unmarshal([]byte(resp), &st); err != nil {
			t.Fatal(err)
		}
	}
	return code, st
}

// checkRecording ffprobes a finished recording: H264 320x240 and (with
// transcoding) AAC 48 kHz, lasting want (0: any whole number of frames),
// the audio within 50 ms of the video at both ends.
func checkRecording(t testing.TB, bin, path string, aac bool, want time.Duration) {
	t.Helper()
	p := ffprobe(t, bin, path)
	var video, audio int = -1, -1
	for i, s := range p.Streams {
		switch s.CodecType {
		case "video":
			video = i
		case "audio":
			audio = i
		}
	}
	if video < 0 || p.Streams[video].CodecName != "h264" || p.Streams[video].Width != 320 || p.Streams[video].Height != 240 {
		t.Fatalf("%s: %+v, want h264 320x240 video", path, p.Streams)
	}
	if aac != (audio >= 0) || (aac && (p.Streams[audio].CodecName != "aac" || p.Streams[audio].SampleRate != "48000")) {
		t.Fatalf("%s: %+v, want aac 48 kHz audio iff transcoding is available", path, p.Streams)
	}
	vs := seconds(t, p.Streams[video].StartTime)
	vd := seconds(t, p.Streams[video].Duration)
	if want == 0 {
		want = (vd + frameDuration/2) / frameDuration * frameDuration
	}
	if vs != 0 {
		t.Errorf("%s: video starts at %v, want 0", path, vs)
	}
	if math.Abs(float64(vd-want)) > float64(50*time.Millisecond) {
		t.Errorf("%s: video lasts %v, want %v", path, vd, want)
	}
	if n, _ := strconv.Atoi(p.Streams[video].NbFrames); n != int(want/frameDuration) {
		t.Errorf("%s: %s video frames, want %d", path, p.Streams[video].NbFrames, want/frameDuration)
	}
	if aac {
		as, ad := seconds(t, p.Streams[audio].StartTime), seconds(t, p.Streams[audio].Duration)
		if d := as - vs; d < -50*time.Millisecond || d > 50*time.Millisecond {
			t.Errorf("%s: audio starts %v after video, want within 50 ms", path, d)
		}
		// At the end the tracks stop on their own: when the publisher
		// leaves, audio sent after the last video frame (up to a frame
		// interval, 40 ms), the Opus packet in flight (20 ms) and the AAC
		// encoder's flush (21 ms) may run past the video.
		if d := (as + ad) - (vs + vd); d < -50*time.Millisecond || d > 100*time.Millisecond {
			t.Errorf("%s: audio ends %v after video, want within -50..100 ms", path, d)
		}
	}
}

// TestRecord records a published stream in 1 s segments (one GOP each):
// every finished file is a valid MP4 on its own with H264 and AAC of the
// right length, the API reports the file being written, and retention
// deletes files older than max_age while newer ones stay.
func TestRecord(t *testing.T) {
	bin := needFFprobe(t)
	aac := wantAAC(t)
	dir := t.TempDir()
	const maxAge = 3 * time.Second
	base := startServer(t, func(c *config.Config) {
		c.Record.Rules = []record.Rule{{Streams: "cam-*", Dir: dir, Segment: time.Second, MaxAge: maxAge}}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/cam-1", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)

	// Wait for three files: the first two are finished.
	var files []string
	for len(files) < 3 {
		select {
		case <-ctx.Done():
			t.Fatalf("files after 25 s: %v", files)
		case <-time.After(100 * time.Millisecond):
		}
		files = recordings(t, dir)
	}
	if !strings.HasPrefix(files[0], filepath.Join(dir, "cam-1")+string(filepath.Separator)) {
		t.Errorf("file %s is not under %s/cam-1 (default name pattern)", files[0], dir)
	}
	st := recordingStatus(t, base, "cam-1")
	if !st.Enabled || !st.Recording || st.Rule != "cam-*" || st.File == "" || st.Error != "" {
		t.Errorf("status %+v, want enabled, recording, rule cam-*, a file", st)
	}
	for _, p := range files[:2] {
		checkRecording(t, bin, p, aac, time.Second)
	}

	// Retention: the first file goes once it is older than max_age; the
	// newest stay.
	first := files[0]
	deadline := time.Now().Add(maxAge + 5*time.Second)
	for slices.Contains(recordings(t, dir), first) {
		if time.Now().After(deadline) {
			t.Fatalf("%s not deleted %v after max_age %v", first, maxAge+5*time.Second, maxAge)
		}
		time.Sleep(100 * time.Millisecond)
	}
	left := recordings(t, dir)
	if len(left) < 2 {
		t.Errorf("retention left %v, want the files younger than %v", left, maxAge)
	}

	// A stream no rule matches is not recorded, and cannot be switched on.
	if code, _ := setRecording(t, base, "other", `{"enabled": true}`); code != http.StatusConflict {
		t.Errorf("switching on a stream without a rule: %d, want 409", code)
	}
	if code, _ := setRecording(t, base, "cam-1", `{"on": true}`); code != http.StatusBadRequest {
		t.Errorf("bad body: %d, want 400", code)
	}
	if code, _, _ := do(t, http.MethodPost, base+"/v1/streams/cam-1/recording", "text/plain", strings.NewReader(`{"enabled": true}`)); code != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain body: %d, want 415", code)
	}
}

// TestRecordSwitchAndReconnect: switching recording off through the API
// closes the file (a valid MP4), switching it on starts a new one, and a
// publisher that reconnects (a new publisher generation) starts a new
// file too, without the stream ending.
func TestRecordSwitchAndReconnect(t *testing.T) {
	bin := needFFprobe(t)
	aac := wantAAC(t)
	dir := t.TempDir()
	base := startServer(t, func(c *config.Config) {
		c.Record.Rules = []record.Rule{{Dir: dir, Name: "%stream/%Y%m%d-%H%M%S-%f", Segment: time.Hour, Manual: true}}
		c.Stream.ReconnectGrace = 5 * time.Second
	})
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Second)
	defer cancel()
	publish := func() (*feed, func()) {
		pub, err := client.Publish(ctx, base+"/whip/desk", client.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f := newFeed(pub, loadClip(t), 0)
		fctx, stop := context.WithCancel(ctx)
		go f.run(fctx)
		return f, func() { stop(); <-f.done; pub.Close() }
	}
	f, unpublish := publish()
	defer func() { unpublish() }()
	<-f.sentAU(1)

	// manual: nothing until switched on.
	if st := recordingStatus(t, base, "desk"); st.Enabled || st.Recording {
		t.Fatalf("manual rule: status %+v before switching on", st)
	}
	code, st := setRecording(t, base, "desk", `{"enabled": true}`)
	if code != http.StatusOK || !st.Enabled || !st.Recording {
		t.Fatalf("switch on: %d %+v", code, st)
	}
	waitFile := func(n int) []string {
		for {
			if files := recordings(t, dir); len(files) >= n {
				return files
			}
			select {
			case <-ctx.Done():
				t.Fatalf("fewer than %d files", n)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	waitFile(1)
	<-f.sentAU(f.count() + 2*clipGOP) // about 2 s more
	code, st = setRecording(t, base, "desk", `{"enabled": false}`)
	if code != http.StatusOK || st.Enabled || st.Recording || st.File != "" {
		t.Fatalf("switch off: %d %+v", code, st)
	}
	files := recordings(t, dir)
	if len(files) != 1 {
		t.Fatalf("files after switching off: %v", files)
	}
	p := ffprobe(t, bin, files[0])
	if len(p.Streams) != map[bool]int{true: 2, false: 1}[aac] || seconds(t, p.Format.Duration) < 1500*time.Millisecond {
		t.Errorf("switched-off file: %+v, want about 2 s of h264 (+aac)", p)
	}

	// On again: a new file; then the publisher reconnects: another one.
	if code, st = setRecording(t, base, "desk", `{"enabled": true}`); code != http.StatusOK || !st.Recording {
		t.Fatalf("switch on again: %d %+v", code, st)
	}
	files = waitFile(2)
	<-f.sentAU(f.count() + 2*clipGOP)
	unpublish()
	f, unpublish = publish()
	<-f.sentAU(clipGOP)
	files = waitFile(3)
	if st := recordingStatus(t, base, "desk"); !st.Recording || st.File != files[2] {
		t.Errorf("after reconnect: status %+v, want recording %s", st, files[2])
	}
	// The file of the first publisher was closed at the reconnect and is
	// whole: it starts at a keyframe and holds the 2 s sent.
	checkRecording(t, bin, files[1], aac, 0)
}

// count is how many access units were sent so far.
func (f *feed) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}
