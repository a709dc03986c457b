package record

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// writeFiles records the test clip's units as files of the default name
// under dir, a new file every `every` video frames (25 a second).
func writeFiles(t *testing.T, dir string, frames, every int) time.Time {
	t.Helper()
	video, audio, us := units(t, frames)
	var seg *segment
	vf := 0
	closeSeg := func() {
		if seg != nil {
			if err := seg.close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, u := range us {
		if u.Track == video {
			if vf%every == 0 {
				closeSeg()
				name, err := expand(DefaultName, "cam", u.Wall.Local())
				if err != nil {
					t.Fatal(err)
				}
				p := filepath.Join(dir, filepath.FromSlash(name)+".mp4")
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				if seg, err = newSegment(f, p, video, audio, u); err != nil {
					t.Fatal(err)
				}
			}
			vf++
		}
		if seg == nil {
			continue
		}
		if err := seg.write(u); err != nil {
			t.Fatal(err)
		}
	}
	closeSeg()
	return us[0].Wall
}

func TestRecordingsListAndPlayback(t *testing.T) {
	dir := t.TempDir()
	// 4 s in two files of 2 s; a file of another stream name the rule
	// does not match, and a stray file, are not listed.
	start := writeFiles(t, dir, 100, 50)
	if err := os.WriteFile(filepath.Join(dir, "cam", "notes.mp4"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &Manager{}
	m.rules.Store(newRuleSet([]Rule{{Dir: dir}}))
	recs := m.Recordings("")
	if len(recs) != 1 || recs[0].Stream != "cam" || len(recs[0].Segments) != 1 {
		t.Fatalf("recordings %+v, want one stream with one segment", recs)
	}
	seg := recs[0].Segments[0]
	if !seg.Start.Equal(start) || seg.Duration < 3.9 || seg.Duration > 4.1 || seg.Bytes <= 0 {
		t.Errorf("segment %+v, want start %s and 4 s", seg, start)
	}
	if got := m.Recordings("other"); len(got) != 0 {
		t.Errorf("recordings of another stream: %+v", got)
	}

	// 1.5 s from 1.5 s: across the file boundary at 2 s; video begins at
	// the keyframe at 1 s, shown from 1.5 s.
	var buf bytes.Buffer
	if err := m.Playback("cam", start.Add(1500*time.Millisecond), 1500*time.Millisecond, &buf); err != nil {
		t.Fatal(err)
	}
	var p pmp4.Presentation
	if err := p.Unmarshal(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if len(p.Tracks) != 2 {
		t.Fatalf("%d tracks, want 2", len(p.Tracks))
	}
	v, a := p.Tracks[0], p.Tracks[1]
	if v.Samples[0].IsNonSyncSample {
		t.Error("video does not start with a keyframe")
	}
	if v.TimeOffset != -45000 {
		t.Errorf("video time offset %d, want -45000 (the keyframe 0.5 s before the start)", v.TimeOffset)
	}
	// 1 s .. 3 s of video, continuous across the files.
	if len(v.Samples) != 50 {
		t.Errorf("%d video samples, want 50", len(v.Samples))
	}
	for i, s := range v.Samples {
		if s.Duration != 3600 {
			t.Fatalf("video sample %d lasts %d, want 3600", i, s.Duration)
		}
		if want := i%25 != 0; s.IsNonSyncSample != want {
			t.Fatalf("video sample %d non-sync %v, want %v", i, s.IsNonSyncSample, want)
		}
	}
	var ad int64
	for _, s := range a.Samples {
		ad += int64(s.Duration)
	}
	if got := time.Duration(ad) * time.Second / 48000; got < 1480*time.Millisecond || got > 1520*time.Millisecond {
		t.Errorf("audio lasts %v, want 1.5 s", got)
	}
	if p, err := v.Samples[1].GetPayload(); err != nil || len(p) != int(v.Samples[1].PayloadSize) {
		t.Errorf("video sample 1: %d bytes, %v", len(p), err)
	}

	// No recording there: ErrNoRecording.
	err := m.Playback("cam", start.Add(time.Hour), time.Second, &buf)
	if !errors.Is(err, ErrNoRecording) {
		t.Errorf("span after the recording: %v, want ErrNoRecording", err)
	}
	err = m.Playback("nope", start, time.Second, &buf)
	if !errors.Is(err, ErrNoRecording) {
		t.Errorf("unknown stream: %v, want ErrNoRecording", err)
	}
}
