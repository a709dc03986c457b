// Package snapshot makes JPEG pictures of live streams, for thumbnails:
// the newest keyframe of a stream's H264 or H265 video, read from the hub
// and decoded and encoded as JPEG with FFmpeg's libavcodec (opened at run
// time, like internal/transcode). A stream is decoded at most once per
// MaxAge; requests in between get the same picture.
package snapshot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
)

// Errors of Get; the HTTP edge answers them with 503 (ErrNoVideo: 404).
var (
	// ErrUnavailable: libavcodec could not be loaded.
	ErrUnavailable = errors.New("snapshots unavailable")
	// ErrDecode: the keyframe could not be decoded or encoded.
	ErrDecode = errors.New("snapshot failed")
	// ErrNoVideo: the stream has no H264 or H265 video track.
	ErrNoVideo = errors.New("stream has no H264/H265 video")
	// ErrNoKeyframe: no keyframe arrived within Config.Wait.
	ErrNoKeyframe = errors.New("no keyframe yet")
	// ErrBusy: too many snapshots are being made at once.
	ErrBusy = errors.New("too many snapshots being made")
)

// Config configures Snapshots; zero fields take the defaults.
type Config struct {
	MaxAge  time.Duration // how long a picture is reused (default 1s)
	Wait    time.Duration // how long to wait for a keyframe (default 3s)
	Quality int           // JPEG quantizer 2 (best)..31 (default 5)
	// Parallel bounds the decodes running at once (default 2).
	Parallel int
}

// Image is one snapshot.
type Image struct {
	JPEG          []byte
	Width, Height int
	Taken         time.Time
}

// Streams finds live streams (a *hub.Hub).
type Streams interface {
	Lookup(name string) (*hub.Stream, error)
}

// Snapshots makes and keeps the snapshots of live streams. It is safe for
// concurrent use and owns no goroutine.
type Snapshots struct {
	cfg     Config
	streams Streams
	slots   chan struct{}

	mu      sync.Mutex
	entries map[string]*entry
}

// entry is one stream's newest snapshot; its mutex makes concurrent
// requests for the stream wait for one decode.
type entry struct {
	mu    sync.Mutex
	st    *hub.Stream
	taken time.Time
	img   Image
	err   error
}

// New returns Snapshots of the streams of s.
func New(cfg Config, s Streams) *Snapshots {
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = time.Second
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 3 * time.Second
	}
	if cfg.Quality < 2 || cfg.Quality > 31 {
		cfg.Quality = 5
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 2
	}
	return &Snapshots{cfg: cfg, streams: s, slots: make(chan struct{}, cfg.Parallel), entries: map[string]*entry{}}
}

// Get returns a snapshot of a live stream, made now or at most MaxAge
// ago. A failure is kept for MaxAge too, so that a stream that cannot be
// decoded costs one try a second.
func (s *Snapshots) Get(ctx context.Context, stream string) (Image, error) {
	st, err := s.streams.Lookup(stream)
	if err != nil {
		return Image{}, err
	}
	if err := Available(); err != nil {
		return Image{}, err
	}
	now := time.Now()
	s.mu.Lock()
	for name, e := range s.entries {
		// Forget streams nobody asked about for a while.
		if e.mu.TryLock() {
			if now.Sub(e.taken) > time.Minute {
				delete(s.entries, name)
			}
			e.mu.Unlock()
		}
	}
	e := s.entries[stream]
	if e == nil {
		e = &entry{}
		s.entries[stream] = e
	}
	s.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.st == st && time.Since(e.taken) < s.cfg.MaxAge {
		return e.img, e.err
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return Image{}, fmt.Errorf("%w (at most %d at once)", ErrBusy, s.cfg.Parallel)
	}
	img, err := s.make(ctx, st)
	<-s.slots
	if ctx.Err() != nil && err != nil {
		return Image{}, err // the asker left: keep nothing
	}
	e.st, e.taken, e.img, e.err = st, time.Now(), img, err
	return img, err
}

func (s *Snapshots) make(ctx context.Context, st *hub.Stream) (Image, error) {
	au, h265, err := s.keyframe(ctx, st)
	if err != nil {
		return Image{}, err
	}
	jpeg, w, h, err := encodeJPEG(h265, au, s.cfg.Quality)
	if err != nil {
		return Image{}, err
	}
	return Image{JPEG: jpeg, Width: w, Height: h, Taken: time.Now()}, nil
}

// keyframe reads the stream's newest keyframe (with its parameter sets)
// as an Annex-B access unit.
func (s *Snapshots) keyframe(ctx context.Context, st *hub.Stream) ([]byte, bool, error) {
	var video *hub.Track
	for _, t := range st.Tracks() {
		switch strings.ToUpper(t.Codec.Name()) {
		case "H264", "H265":
			if video == nil && t.Group == t.Index {
				video = &t
			}
		}
	}
	if video == nil {
		return nil, false, ErrNoVideo
	}
	d, err := frame.ForTrack(st, *video)
	if err != nil {
		return nil, false, err
	}
	c, err := st.Tap()
	if err != nil {
		return nil, false, err
	}
	defer c.Close()
	c.OwnPackets() // the depacketizer keeps slices of payloads until the frame ends
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Wait)
	defer cancel()
	for {
		p, _, err := c.Next(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, false, fmt.Errorf("%w after %v", ErrNoKeyframe, s.cfg.Wait)
			}
			return nil, false, err
		}
		if p.Track != video.Index {
			continue
		}
		f, ok := d.Push(p)
		if !ok || !f.Keyframe || len(f.NALUs) == 0 {
			continue
		}
		var b bytes.Buffer
		for _, n := range f.NALUs {
			b.Write([]byte{0, 0, 0, 1})
			b.Write(n)
		}
		return b.Bytes(), strings.ToUpper(video.Codec.Name()) == "H265", nil
	}
}
