package hls

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gohlslib/v2"
	"github.com/bluenviron/gohlslib/v2/pkg/codecs"

	"github.com/sluice-media/sluice/internal/tap"
)

// muxer writes one stream's units into a gohlslib LL-HLS muxer, which
// holds the segments and parts in memory and serves the playlists. Its
// cost is per stream, whatever the number of players.
type muxer struct {
	m            *gohlslib.Muxer
	video, audio *gohlslib.Track
	vcodec       tap.Codec
	segment      time.Duration
	log          *slog.Logger

	// lead is the track that cuts segments: video, else audio.
	leadVideo bool
	started   bool
	first     time.Duration // time of the first unit of the lead track
	ready     chan struct{} // closed once the first segment is complete
	readyOnce sync.Once

	lastKey  time.Duration // video: time of the newest keyframe
	askedKey time.Duration // video: when a keyframe was last asked for
	askKey   func()        // asks the publisher for a keyframe

	errs     atomic.Uint64  // encode errors
	segStart time.Duration  // time of the segment being written
	segments *atomic.Uint64 // counts the segments cut, if not nil
}

// newMuxer starts a muxer for a reader's tracks. askKey, if not nil, is
// called when a segment has run its duration without a keyframe (WebRTC
// senders make keyframes only when asked).
func newMuxer(cfg Config, video, audio *tap.Track, askKey func(), log *slog.Logger) (*muxer, error) {
	mx := &muxer{segment: cfg.SegmentDuration, askKey: askKey, log: log, ready: make(chan struct{})}
	var tracks []*gohlslib.Track
	if video != nil {
		var c codecs.Codec = &codecs.H264{}
		switch video.Codec {
		case tap.H265:
			c = &codecs.H265{}
		case tap.AV1:
			c = &codecs.AV1{} // gohlslib takes the sequence header from the first key unit
		}
		mx.video = &gohlslib.Track{Codec: c, ClockRate: video.ClockRate}
		mx.vcodec = video.Codec
		mx.leadVideo = true
		tracks = append(tracks, mx.video)
	}
	if audio != nil {
		if audio.Codec != tap.AAC {
			return nil, fmt.Errorf("hls: audio codec %s (want AAC)", audio.Codec)
		}
		mx.audio = &gohlslib.Track{Codec: &codecs.MPEG4Audio{Config: audio.AAC}, ClockRate: audio.ClockRate}
		tracks = append(tracks, mx.audio)
	}
	if len(tracks) == 0 {
		return nil, tap.ErrNoTracks
	}
	mx.m = &gohlslib.Muxer{
		Variant:            gohlslib.MuxerVariantLowLatency,
		Tracks:             tracks,
		SegmentCount:       cfg.SegmentCount,
		SegmentMinDuration: cfg.SegmentDuration,
		PartMinDuration:    cfg.PartDuration,
		OnEncodeError:      mx.encodeError,
	}
	if err := mx.m.Start(); err != nil {
		return nil, fmt.Errorf("hls: %w", err)
	}
	return mx, nil
}

// encodeError logs the first of the muxer's non-fatal errors and every
// thousandth after it, so that a broken stream cannot flood the log.
func (mx *muxer) encodeError(err error) {
	if n := mx.errs.Add(1); n == 1 || n%1000 == 0 {
		mx.log.Warn("hls muxing", "err", err, "errors", n)
	}
}

// write adds one unit. Units come in presentation order (tap.Reader).
func (mx *muxer) write(u *tap.Unit) error {
	t := u.Time()
	var err error
	switch {
	case u.NALUs != nil:
		if mx.video == nil {
			return nil
		}
		mx.keyframes(u.Key, t)
		switch mx.vcodec {
		case tap.H265:
			err = mx.m.WriteH265(mx.video, u.Wall, u.PTS, u.NALUs)
		case tap.AV1:
			err = mx.m.WriteAV1(mx.video, u.Wall, u.PTS, u.NALUs)
		default:
			err = mx.m.WriteH264(mx.video, u.Wall, u.PTS, u.NALUs)
		}
	default:
		if mx.audio == nil {
			return nil
		}
		err = mx.m.WriteMPEG4Audio(mx.audio, u.Wall, u.PTS, [][]byte{u.Payload})
	}
	if err != nil {
		// One bad access unit (say, a DTS the extractor cannot derive)
		// costs that unit, not the stream.
		mx.encodeError(err)
		return nil
	}
	if (u.NALUs != nil) == mx.leadVideo && (u.Key || !mx.leadVideo) {
		mx.cutAt(t)
	}
	return nil
}

// cutAt notes a random access point of the lead track at t: the muxer has
// finished its first segment once one comes a segment duration after the
// first unit (gohlslib cuts there, in the same write).
func (mx *muxer) cutAt(t time.Duration) {
	if !mx.started {
		mx.started, mx.first, mx.segStart = true, t, t
		return
	}
	if t-mx.first >= mx.segment {
		mx.readyOnce.Do(func() { close(mx.ready) })
	}
	// gohlslib's rule: a segment ends at the lead track's first random
	// access point SegmentMinDuration after its start.
	if t-mx.segStart >= mx.segment {
		mx.segStart = t
		if mx.segments != nil {
			mx.segments.Add(1)
		}
	}
}

// keyframes asks for a keyframe when the segment being written has run
// its duration without one, again each further segment duration.
func (mx *muxer) keyframes(key bool, t time.Duration) {
	if key || !mx.started {
		mx.lastKey, mx.askedKey = t, t
		return
	}
	if mx.askKey != nil && t-mx.lastKey >= mx.segment && t-mx.askedKey >= mx.segment {
		mx.askedKey = t
		mx.askKey()
	}
}

// handle serves one playlist, segment or part; it reports false, having
// written nothing, when the muxer has no such file.
func (mx *muxer) handle(w http.ResponseWriter, r *http.Request) bool {
	tw := &trackingWriter{ResponseWriter: w}
	mx.m.Handle(tw, r)
	return tw.wrote
}

// close ends the muxer: waiting requests are answered 404.
func (mx *muxer) close() { mx.m.Close() }

// trackingWriter notes whether a handler answered at all (gohlslib writes
// nothing for a file it does not know).
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *trackingWriter) WriteHeader(code int) {
	w.wrote = true
	w.ResponseWriter.WriteHeader(code)
}

func (w *trackingWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

// Flush lets a handler that streams flush through the wrapper.
func (w *trackingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
