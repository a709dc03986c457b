package record

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/tap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// units builds the clip's video units and Opus test packets, in order.
func units(t testing.TB, frames int) (video, audio *tap.Track, us []*tap.Unit) {
	clip := hubtest.LoadClip(t)
	video = &tap.Track{Codec: tap.H264, ClockRate: 90000}
	audio = &tap.Track{Codec: tap.Opus, ClockRate: 48000, Channels: 2}
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.Local)
	for i := range frames * 2 {
		if i%2 == 0 {
			n := i / 2
			us = append(us, &tap.Unit{Track: video, PTS: int64(n) * 3600, Key: n%25 == 0, NALUs: clip[n%len(clip)]})
		}
		us = append(us, &tap.Unit{Track: audio, PTS: int64(i) * 960, Key: true, Payload: client.OpusTestPacket(uint16(i))})
	}
	for _, u := range us {
		u.Wall = wall.Add(u.Time())
	}
	return video, audio, us
}

// memSink is a sink in memory that fails with ENOSPC past limit bytes.
type memSink struct {
	buf   bytes.Buffer
	limit int
}

func (s *memSink) Write(p []byte) (int, error) {
	if s.limit > 0 && s.buf.Len()+len(p) > s.limit {
		n := s.limit - s.buf.Len()
		s.buf.Write(p[:n])
		return n, syscall.ENOSPC
	}
	return s.buf.Write(p)
}

func (s *memSink) Truncate(n int64) error { s.buf.Truncate(int(n)); return nil }
func (s *memSink) Close() error           { return nil }

// parse reads a segment file back with mediacommon: the init block's
// tracks and the samples of every fragment.
func parse(t testing.TB, data []byte) (fmp4.Init, fmp4.Parts) {
	t.Helper()
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(data)); err != nil {
		t.Fatalf("init: %v", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(data); err != nil {
		t.Fatalf("fragments: %v", err)
	}
	return init, parts
}

// TestSegmentFile writes 2 s of H264 and Opus into one segment and reads
// it back: an init block with both tracks, fragments of about a second,
// every sample, video timed 3600 ticks apart from 0 and starting with a
// sync sample, audio 960 apart; ffprobe, where present, agrees.
func TestSegmentFile(t *testing.T) {
	video, audio, us := units(t, 50)
	out := &memSink{}
	seg, err := newSegment(out, "mem.mp4", video, audio, us[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if err := seg.write(u); err != nil {
			t.Fatal(err)
		}
	}
	if err := seg.close(); err != nil {
		t.Fatal(err)
	}
	init, parts := parse(t, out.buf.Bytes())
	if len(init.Tracks) != 2 || init.Tracks[0].TimeScale != 90000 || init.Tracks[1].TimeScale != 48000 {
		t.Fatalf("init tracks %+v", init.Tracks)
	}
	if len(parts) < 2 || len(parts) > 3 {
		t.Errorf("%d fragments for 2 s, want 2 (one a second, and the rest)", len(parts))
	}
	var vs, as int
	for _, p := range parts {
		for _, pt := range p.Tracks {
			dts := pt.BaseTime
			for _, s := range pt.Samples {
				switch pt.ID {
				case 1:
					if want := uint64(vs) * 3600; dts != want {
						t.Fatalf("video sample %d at %d, want %d", vs, dts, want)
					}
					if s.IsNonSyncSample == (vs%25 == 0) {
						t.Fatalf("video sample %d: non-sync %v", vs, s.IsNonSyncSample)
					}
					vs++
				case 2:
					if want := uint64(as) * 960; dts != want {
						t.Fatalf("audio sample %d at %d, want %d", as, dts, want)
					}
					as++
				}
				dts += uint64(s.Duration)
			}
		}
	}
	if vs != 50 || as != 100 {
		t.Errorf("%d video and %d audio samples, want 50 and 100", vs, as)
	}

	if bin, err := exec.LookPath("ffprobe"); err == nil {
		path := filepath.Join(t.TempDir(), "seg.mp4")
		if err := os.WriteFile(path, out.buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := exec.Command(bin, "-v", "error", "-show_entries", "stream=codec_name,width,height,duration", "-of", "csv=p=0", path).CombinedOutput()
		if err != nil || !strings.Contains(string(got), "h264,320,240,2.000000") || !strings.Contains(string(got), "opus") {
			t.Errorf("ffprobe: %v\n%s", err, got)
		}
	} else if os.Getenv("SLUICE_TEST_REQUIRE_FFPROBE") != "" {
		t.Fatal(err)
	}
}

// TestSegmentWriteError: a write that fails (a full disk) is returned, and
// the file is cut back to its last whole box.
func TestSegmentWriteError(t *testing.T) {
	video, audio, us := units(t, 50)
	out := &memSink{limit: 15000}
	seg, err := newSegment(out, "full.mp4", video, audio, us[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us {
		if err = seg.write(u); err != nil {
			break
		}
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write: %v, want ENOSPC", err)
	}
	seg.abort()
	if int64(out.buf.Len()) != seg.size {
		t.Fatalf("file is %d bytes, want cut back to %d", out.buf.Len(), seg.size)
	}
	parse(t, out.buf.Bytes()) // still readable
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDiskFullStopsRecording: a recorder whose writes fail stops with the
// error in its status; the stream goes on for its viewers, and switching
// recording on again retries.
func TestDiskFullStopsRecording(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second, MaxViewersPerStream: 10})
	var mu sync.Mutex
	var sinks []*memSink
	m := newManager(Config{Rules: []Rule{{Dir: t.TempDir(), Audio: AudioOpus}}}, h, discard(), func(string) (sink, error) {
		mu.Lock()
		defer mu.Unlock()
		s := &memSink{limit: 20000}
		sinks = append(sinks, s)
		return s, nil
	})
	defer m.Close()
	st, stop := hubtest.Loop(t, h, "cam", true, true)
	defer stop()
	viewer, err := st.Stream().Join()
	if err != nil {
		t.Fatal(err)
	}
	defer viewer.Close()
	waitFor(t, "recording failed", func() bool { return m.Status("cam").Error != "" })
	s := m.Status("cam")
	if s.Recording || !strings.Contains(s.Error, "no space left") || !s.Enabled {
		t.Fatalf("status %+v, want enabled, not recording, the write error", s)
	}
	// The running count drops when the recorder's goroutine returns, just
	// after the error is in its status.
	waitFor(t, "recorder stopped", func() bool { return m.Stats().Recording == 0 })
	if st := m.Stats(); st.Errors != 1 || st.Recording != 0 || st.Files != 0 {
		t.Errorf("stats %+v, want 1 error, nothing recording, no file finished", st)
	}
	// The viewer still gets media.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for range 100 {
		if _, _, err := viewer.Next(ctx); err != nil {
			t.Fatalf("viewer after the recording failed: %v", err)
		}
	}
	if _, err := m.SetRecording("cam", true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "second attempt", func() bool { mu.Lock(); defer mu.Unlock(); return len(sinks) == 2 })
}

// TestSwitches: manual rules wait for the API; a stream without a rule
// cannot be switched on; switching off stops and closes.
func TestSwitches(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second})
	dir := t.TempDir()
	m := New(Config{Rules: []Rule{{Streams: "cam-*", Dir: dir, Manual: true, Audio: AudioNone}}}, h, discard())
	defer m.Close()
	if _, err := m.SetRecording("desk", true); !errors.Is(err, ErrNoRule) {
		t.Errorf("no rule: %v, want ErrNoRule", err)
	}
	if s, err := m.SetRecording("desk", false); err != nil || s.Enabled {
		t.Errorf("switching off without a rule: %+v, %v", s, err)
	}
	_, stop := hubtest.Loop(t, h, "cam-1", true, true)
	defer stop()
	time.Sleep(50 * time.Millisecond)
	if s := m.Status("cam-1"); s.Enabled || s.Recording || s.Rule != "cam-*" {
		t.Fatalf("manual rule before the switch: %+v", s)
	}
	if s, err := m.SetRecording("cam-1", true); err != nil || !s.Enabled || !s.Recording {
		t.Fatalf("switch on: %+v, %v", s, err)
	}
	waitFor(t, "a file", func() bool { return m.Status("cam-1").File != "" })
	file := m.Status("cam-1").File
	if s, err := m.SetRecording("cam-1", false); err != nil || s.Enabled || s.Recording || s.File != "" {
		t.Fatalf("switch off: %+v, %v", s, err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	init, _ := parse(t, data)
	if len(init.Tracks) != 1 {
		t.Errorf("audio none: %d tracks", len(init.Tracks))
	}
}

// TestRetention: files past max_age go, then the oldest while the
// directory is over max_bytes; files being written stay; other files are
// not touched.
func TestRetention(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	mk := func(name string, size int, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
		return p
	}
	old := mk("a/old.mp4", 100, 3*time.Hour)
	b1 := mk("a/b1.mp4", 100, 50*time.Minute)
	b2 := mk("b/b2.mp4", 100, 40*time.Minute)
	b3 := mk("b/b3.mp4", 100, 30*time.Minute)
	open := mk("b/open.mp4", 100, 2*time.Hour)
	other := mk("a/notes.txt", 1000, 5*time.Hour)
	gone := mk("c/gone.mp4", 10, 4*time.Hour)
	m := &Manager{log: discard(), open: map[string]bool{open: true}}
	m.pruneDir(Rule{Dir: dir, MaxAge: time.Hour, MaxBytes: 300}, now)
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	for p, want := range map[string]bool{old: false, gone: false, b1: false, b2: true, b3: true, open: true, other: true} {
		if exists(p) != want {
			t.Errorf("%s exists: %v, want %v", p, !want, want)
		}
	}
	// c/ is empty now, but new (modified just now): kept this time.
	if !exists(filepath.Join(dir, "c")) {
		t.Error("a directory modified just now was removed")
	}
	_ = os.Chtimes(filepath.Join(dir, "c"), now.Add(-2*time.Hour), now.Add(-2*time.Hour))
	m.pruneDir(Rule{Dir: dir, MaxAge: time.Hour}, now)
	if exists(filepath.Join(dir, "c")) {
		t.Error("an old empty directory was kept")
	}
}

// TestSetRules: a reload's new rules start recording a live stream that
// no rule matched, and removing the rule stops it (the file closed).
func TestSetRules(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second})
	dir := t.TempDir()
	m := New(Config{}, h, discard())
	defer m.Close()
	_, stop := hubtest.Loop(t, h, "cam-1", true, true)
	defer stop()
	if s := m.Status("cam-1"); s.Rule != "" || s.Recording {
		t.Fatalf("before any rule: %+v", s)
	}
	m.SetRules([]Rule{{Streams: "cam-*", Dir: dir, Audio: AudioNone}})
	waitFor(t, "recording by the new rule", func() bool { s := m.Status("cam-1"); return s.Recording && s.File != "" })
	file := m.Status("cam-1").File
	m.SetRules(nil)
	waitFor(t, "recording stopped with its rule", func() bool { return !m.Status("cam-1").Recording })
	if s := m.Status("cam-1"); s.Rule != "" || s.Enabled {
		t.Errorf("after the rule went: %+v", s)
	}
	if info, err := os.Stat(file); err != nil || info.Size() == 0 {
		t.Fatalf("the file %s: %v", file, err)
	}
}
