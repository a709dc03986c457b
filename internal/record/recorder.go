package record

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// recorder records one stream: its goroutine reads the stream (a tap.Pool
// subscription, shared with the stream's LL-HLS) and writes segment files
// until the stream ends, it is switched off, or a write fails. A slow
// disk makes the recorder fall behind and skip, never the publisher wait.
type recorder struct {
	m      *Manager
	st     *hub.Stream
	rule   Rule
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	file string // the file being written
	err  error  // why recording stopped, if it failed
}

func (rc *recorder) run() {
	defer rc.m.wg.Done()
	defer close(rc.done)
	defer rc.cancel()
	mode := tap.AudioAAC
	switch rc.rule.Audio {
	case AudioOpus:
		mode = tap.AudioOpus
	case AudioNone:
		mode = tap.AudioNone
	}
	r, err := rc.m.cfg.Taps.Open(rc.ctx, rc.st, tap.Options{Audio: mode})
	if err != nil {
		if rc.ctx.Err() == nil && !errors.Is(err, hub.ErrEnded) {
			rc.fail(err)
		}
		return
	}
	defer r.Close()
	rc.m.stats.running.Add(1)
	defer rc.m.stats.running.Add(^uint64(0))
	if err := r.AudioErr(); err != nil {
		rc.log.Warn("recording without audio", "err", err)
	}
	rc.log.Info("recording started", "dir", rc.rule.Dir)
	w := &writer{rc: rc, video: r.Video(), audio: r.Audio()}
	for {
		u, err := r.Next(rc.ctx)
		if err != nil {
			break
		}
		if err := w.write(u); err != nil {
			w.abort()
			rc.fail(err)
			return
		}
	}
	if err := w.close(); err != nil {
		rc.fail(err)
		return
	}
	rc.log.Info("recording stopped")
}

// fail stops the recording of this stream with an error log; live media
// goes on.
func (rc *recorder) fail(err error) {
	rc.mu.Lock()
	rc.err = err
	rc.file = ""
	rc.mu.Unlock()
	rc.m.stats.errors.Add(1)
	rc.log.Error("recording failed", "err", err)
}

func (rc *recorder) setFile(path string) {
	rc.mu.Lock()
	rc.file = path
	rc.mu.Unlock()
}

// writer cuts a stream's units into segment files.
type writer struct {
	rc           *recorder
	video, audio *tap.Track
	seg          *segment
	askedKey     time.Duration
}

func (w *writer) write(u *tap.Unit) error {
	rule := w.rc.rule
	lead := u.Track == w.video || w.video == nil
	if w.seg != nil && lead && u.Key {
		switch {
		case u.Gen != w.seg.gen:
			// A new publisher: a new file, also if it sends other
			// parameters (the hub has checked the codec).
			if err := w.rotate(); err != nil {
				return err
			}
		case u.Time()-w.seg.start >= rule.Segment, u.Track.IsVideo() && w.seg.paramsChanged(u):
			if err := w.rotate(); err != nil {
				return err
			}
		}
	}
	if w.seg == nil {
		if !lead || !u.Key {
			return nil // a file starts with a keyframe
		}
		if err := w.open(u); err != nil {
			return err
		}
	}
	if u.Track.IsVideo() {
		w.keyframes(u)
	}
	err := w.seg.write(u)
	w.countBytes()
	return err
}

// countBytes adds what the segment wrote since the last call to the
// manager's byte count.
func (w *writer) countBytes() {
	if w.seg != nil {
		w.rc.m.stats.bytes.Add(uint64(w.seg.size - w.seg.counted))
		w.seg.counted = w.seg.size
	}
}

// keyframes asks for a keyframe when a segment is due and none came:
// WebRTC senders make keyframes only when asked.
func (w *writer) keyframes(u *tap.Unit) {
	t := u.Time()
	if u.Key {
		w.askedKey = t
		return
	}
	seg := w.rc.rule.Segment
	if t-w.seg.start >= seg && t-w.askedKey >= min(seg, 5*time.Second) {
		w.askedKey = t
		w.rc.st.RequestKeyframe()
	}
}

// open starts a file with unit u.
func (w *writer) open(u *tap.Unit) error {
	m := w.rc.m
	name, err := expand(w.rc.rule.Name, w.rc.st.Name(), u.Wall.Local())
	if err != nil {
		return err
	}
	base := filepath.Join(w.rc.rule.Dir, filepath.FromSlash(name))
	var f sink
	path := base + ".mp4"
	for i := 1; ; i++ {
		f, err = m.create(path)
		if errors.Is(err, os.ErrNotExist) {
			// A new directory (or one retention just removed as empty).
			if err = os.MkdirAll(filepath.Dir(base), 0o755); err == nil {
				f, err = m.create(path)
			}
		}
		if !errors.Is(err, os.ErrExist) || i > 100 {
			break
		}
		path = fmt.Sprintf("%s_%d.mp4", base, i) // two files in one second
	}
	if err != nil {
		return err
	}
	m.hold(path)
	seg, err := newSegment(f, path, w.video, w.audio, u)
	if err != nil {
		_ = f.Close()
		m.release(path)
		return fmt.Errorf("%s: %w", path, err)
	}
	w.seg = seg
	w.rc.setFile(path)
	w.rc.log.Debug("recording segment", "file", path)
	return nil
}

// rotate closes the current file; the next keyframe opens a new one.
func (w *writer) rotate() error {
	return w.close()
}

func (w *writer) close() error {
	if w.seg == nil {
		return nil
	}
	seg := w.seg
	err := seg.close()
	w.countBytes()
	w.seg = nil
	w.rc.setFile("")
	if err == nil {
		w.rc.m.stats.files.Add(1)
	}
	w.rc.m.release(seg.path)
	return err
}

func (w *writer) abort() {
	if w.seg != nil {
		w.countBytes()
		w.seg.abort()
		w.rc.m.release(w.seg.path)
		w.seg = nil
	}
}
