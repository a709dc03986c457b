package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/record"
)

// Library lists the recordings on disk and builds playback files of them
// (internal/record.Manager).
type Library interface {
	Recordings(stream string) []record.Recording
	Playback(stream string, start time.Time, dur time.Duration, w io.Writer) error
}

// Errors of playback requests.
var (
	errBadSpan      = errors.New("invalid playback span")
	errPlaybackBusy = errors.New("too many playback files being built")
)

// maxPlaybackBuild bounds the playback files built at once.
const maxPlaybackBuild = 2

// DefaultPlaybackMaxDuration bounds one playback request's span.
const DefaultPlaybackMaxDuration = time.Hour

// playbackTTL is how long a built playback file is kept for the range
// requests of the same player (a <video> asks for the file many times).
const playbackTTL = time.Minute

// maxPlaybackCache bounds the built files kept.
const maxPlaybackCache = 8

func (a *API) routeRecordings(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/recordings", a.listRecordings)
	mux.HandleFunc("GET /v1/recordings/{stream}", a.getRecordings)
	mux.HandleFunc("GET /playback/{file}", a.playback)
	a.builds = make(chan struct{}, maxPlaybackBuild)
	a.built = map[string]*builtFile{}
}

func (a *API) listRecordings(w http.ResponseWriter, r *http.Request) {
	if !a.authorizeAPI(w, r, "") {
		return
	}
	recs := a.cfg.Library.Recordings("")
	if recs == nil {
		recs = []record.Recording{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"recordings": recs})
}

func (a *API) getRecordings(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("stream")
	if !a.authorizeAPI(w, r, name) {
		return
	}
	if !validName(name) {
		a.fail(w, r, "api", name, fmt.Errorf("%w: %.40q", errBadName, name))
		return
	}
	out := record.Recording{Stream: name, Segments: []record.Segment{}}
	if recs := a.cfg.Library.Recordings(name); len(recs) == 1 {
		out = recs[0]
	}
	writeJSON(w, http.StatusOK, out)
}

// playback answers GET /playback/{stream}.mp4?start=RFC3339&duration=S
// with one MP4 of that span (record.Manager.Playback), served with range
// requests so that a <video> can seek. Authorised like a viewer (read).
func (a *API) playback(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutSuffix(r.PathValue("file"), ".mp4")
	if !ok || !validName(name) {
		a.fail(w, r, "playback", name, fmt.Errorf("%w: want /playback/{stream}.mp4 with a valid stream name", errBadName))
		return
	}
	if err := a.authz.Authorize(r.Context(), auth.NewRequest(r, auth.ActionRead, name)); err != nil {
		a.fail(w, r, "playback", name, err)
		return
	}
	start, dur, err := a.span(r)
	if err != nil {
		a.fail(w, r, "playback", name, err)
		return
	}
	bf, err := a.buildPlayback(name, start, dur)
	if err != nil {
		a.fail(w, r, "playback", name, err)
		return
	}
	defer bf.release(a)
	w.Header().Set("Content-Type", "video/mp4")
	w.Header().Set("Cache-Control", "private, max-age=60")
	http.ServeContent(w, r, name+".mp4", bf.built, io.NewSectionReader(bf.f, 0, bf.size))
}

// span reads and checks ?start= and ?duration=.
func (a *API) span(r *http.Request) (time.Time, time.Duration, error) {
	q := r.URL.Query()
	start, err := time.Parse(time.RFC3339Nano, q.Get("start"))
	if err != nil {
		return time.Time{}, 0, fmt.Errorf("%w: start=%.40q is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)", errBadSpan, q.Get("start"))
	}
	secs, err := strconv.ParseFloat(q.Get("duration"), 64)
	limit := a.cfg.PlaybackMaxDuration
	if limit <= 0 {
		limit = DefaultPlaybackMaxDuration
	}
	if err != nil || secs <= 0 || secs > limit.Seconds() {
		return time.Time{}, 0, fmt.Errorf("%w: duration=%.20q (seconds, over 0 and at most %g: playback.max_duration)", errBadSpan, q.Get("duration"), limit.Seconds())
	}
	return start, time.Duration(secs * float64(time.Second)), nil
}

// builtFile is a playback MP4 in an unlinked temporary file, kept for a
// while for the same player's next range requests.
type builtFile struct {
	key     string
	f       *os.File
	size    int64
	built   time.Time
	refs    int
	evicted bool
}

// buildPlayback returns the playback file of a span, built now or kept
// from a request a moment ago; the caller releases it.
func (a *API) buildPlayback(stream string, start time.Time, dur time.Duration) (*builtFile, error) {
	key := stream + "\x00" + start.UTC().Format(time.RFC3339Nano) + "\x00" + dur.String()
	a.builtMu.Lock()
	now := time.Now()
	for k, bf := range a.built {
		if now.Sub(bf.built) > playbackTTL {
			a.evictLocked(k, bf)
		}
	}
	if bf := a.built[key]; bf != nil {
		bf.refs++
		a.builtMu.Unlock()
		return bf, nil
	}
	a.builtMu.Unlock()

	select {
	case a.builds <- struct{}{}:
		defer func() { <-a.builds }()
	default:
		return nil, fmt.Errorf("%w (at most %d at once)", errPlaybackBusy, maxPlaybackBuild)
	}
	f, err := os.CreateTemp("", "sluice-playback-*.mp4")
	if err != nil {
		return nil, err
	}
	// Unlinked at once: the file lives while it is open, and nothing is
	// left behind if sluice stops.
	_ = os.Remove(f.Name())
	if err := a.cfg.Library.Playback(stream, start, dur, f); err != nil {
		_ = f.Close()
		return nil, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	bf := &builtFile{key: key, f: f, size: size, built: time.Now(), refs: 1}
	a.builtMu.Lock()
	defer a.builtMu.Unlock()
	if old := a.built[key]; old != nil {
		a.evictLocked(key, old)
	}
	for k, old := range a.built {
		if len(a.built) < maxPlaybackCache {
			break
		}
		a.evictLocked(k, old)
	}
	a.built[key] = bf
	return bf, nil
}

// evictLocked drops a kept file; it is closed when its last reader is
// done. a.builtMu is held.
func (a *API) evictLocked(key string, bf *builtFile) {
	delete(a.built, key)
	bf.evicted = true
	if bf.refs == 0 {
		_ = bf.f.Close()
	}
}

func (bf *builtFile) release(a *API) {
	a.builtMu.Lock()
	defer a.builtMu.Unlock()
	bf.refs--
	if bf.refs == 0 && bf.evicted {
		_ = bf.f.Close()
	}
}

// closePlayback closes the kept playback files.
func (a *API) closePlayback() {
	a.builtMu.Lock()
	defer a.builtMu.Unlock()
	for k, bf := range a.built {
		a.evictLocked(k, bf)
	}
}
