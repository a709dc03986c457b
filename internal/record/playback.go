package record

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/pmp4"
)

// ErrSpanTooLarge means a playback span holds more media than one MP4's
// 32-bit sizes can.
var ErrSpanTooLarge = errors.New("span too large for one MP4")

// Playback writes one MP4 (ftyp, moov, mdat: seekable as it is) of a
// stream's recording from start for dur. The media is copied from the
// fragments on disk, not re-encoded: video starts decoding at the keyframe
// at or before start, and an edit list shows it from start. The span may
// run across files of one run (contiguous files); it ends early at a gap
// or where the codec's parameters change. ErrNoRecording when no file
// covers the span.
func (m *Manager) Playback(stream string, start time.Time, dur time.Duration, w io.Writer) error {
	end := start.Add(dur)
	var run []file
	for _, r := range runs(m.catalogNow().files(stream)) {
		first, last := r[0], r[len(r)-1]
		if first.start.Before(end) && last.start.Add(last.dur).After(start) {
			run = r
			break
		}
	}
	if run == nil {
		return fmt.Errorf("%w of %q between %s and %s", ErrNoRecording, stream,
			start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	}
	// Times within the run: each file starts where the one before ended.
	from := max(start.Sub(run[0].start), 0)
	to := end.Sub(run[0].start)
	var b builder
	var offset time.Duration
	for _, f := range run {
		if offset >= to {
			break
		}
		if offset+f.dur <= from {
			offset += f.dur
			continue
		}
		ok, err := b.add(f.path, offset-from, to-from)
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		offset += f.dur
	}
	defer b.close()
	return b.write(w)
}

// builder gathers the samples of one playback MP4.
type builder struct {
	init   *fmp4.Init
	tracks []*pmp4.Track
	open   []*os.File
}

// add takes the samples of one file that fall before end; the file starts
// at shift from the span's start (negative: before it). It reports false
// when the file does not continue the ones before (other tracks or codec
// parameters).
func (b *builder) add(path string, shift, end time.Duration) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	rf, err := readFile(f)
	if err != nil {
		_ = f.Close()
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if b.init == nil {
		b.init = &rf.init
		for _, t := range rf.init.Tracks {
			b.tracks = append(b.tracks, &pmp4.Track{ID: t.ID, TimeScale: t.TimeScale, Codec: t.Codec})
		}
	} else if !sameTracks(b.init, &rf.init) {
		_ = f.Close()
		return false, nil
	}
	b.open = append(b.open, f)
	for i, t := range rf.init.Tracks {
		pt := b.tracks[i]
		sh := durationToMP4(shift, t.TimeScale)
		stop := durationToMP4(end, t.TimeScale)
		for _, s := range rf.samples[t.ID] {
			at := sh + s.dts
			if at >= stop {
				break
			}
			if at <= 0 && s.sync {
				// A later keyframe at or before the span's start: begin
				// there (for audio, every sample is one).
				pt.Samples = pt.Samples[:0]
			}
			if len(pt.Samples) == 0 {
				if !s.sync {
					continue // no keyframe yet
				}
				pt.TimeOffset = int32(max(min(at, math.MaxInt32), math.MinInt32))
			}
			off, size := s.offset, s.size
			pt.Samples = append(pt.Samples, &pmp4.Sample{Duration: s.dur, PTSOffset: s.ptsOffset,
				IsNonSyncSample: !s.sync, PayloadSize: size, GetPayload: func() ([]byte, error) {
					p := make([]byte, size)
					if _, err := f.ReadAt(p, off); err != nil {
						return nil, fmt.Errorf("%s: %w", path, err)
					}
					return p, nil
				}})
		}
	}
	return true, nil
}

// sameTracks reports whether a file's tracks continue the first file's.
func sameTracks(a, b *fmp4.Init) bool {
	if len(a.Tracks) != len(b.Tracks) {
		return false
	}
	for i, t := range a.Tracks {
		u := b.Tracks[i]
		if t.ID != u.ID || t.TimeScale != u.TimeScale || !reflect.DeepEqual(t.Codec, u.Codec) {
			return false
		}
	}
	return true
}

func (b *builder) write(w io.Writer) error {
	var p pmp4.Presentation
	var size int64
	hasSync := false
	for _, t := range b.tracks {
		if len(t.Samples) == 0 {
			continue
		}
		p.Tracks = append(p.Tracks, t)
		for _, s := range t.Samples {
			size += int64(s.PayloadSize)
		}
		hasSync = true
	}
	if !hasSync {
		return fmt.Errorf("%w: no keyframe in the span", ErrNoRecording)
	}
	if size > math.MaxUint32-(1<<20) {
		return fmt.Errorf("%w: %d bytes of media, at most 4 GiB", ErrSpanTooLarge, size)
	}
	return p.Marshal(w)
}

func (b *builder) close() {
	for _, f := range b.open {
		_ = f.Close()
	}
}
