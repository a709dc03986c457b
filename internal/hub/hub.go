// Package hub owns the registry of live streams and each stream's packet
// ring: one publisher writes RTP into the ring, any number of viewers read it
// with cursors of their own, and no viewer can slow the publisher down.
package hub

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// Errors the hub returns; the HTTP edge maps them to status codes.
var (
	ErrNotFound       = errors.New("stream not found")
	ErrBusy           = errors.New("stream already has a publisher")
	ErrTooManyViewers = errors.New("stream has reached its viewer limit")
	ErrEnded          = errors.New("stream ended")
)

// Config bounds what one stream may hold.
type Config struct {
	RingPackets         int           // ring size, a power of two
	PLIMinInterval      time.Duration // at most one keyframe request per stream per interval
	MaxViewersPerStream int
	// ReconnectGrace is how long a stream whose publisher left waits for a
	// new publisher before it ends; 0 ends it at once.
	ReconnectGrace time.Duration
	// Deriver makes derived tracks (derive.go); nil: none.
	Deriver Deriver
	// Now is the clock of the keyframe rate limit and of timestamp
	// rebasing; time.Now if nil.
	Now func() time.Time
}

// Publisher is what a stream needs from the session that feeds it.
type Publisher interface {
	// RequestKeyframe asks the sender for a new keyframe (PLI/FIR).
	RequestKeyframe()
}

// Hub is the registry of streams. Its map is the only shared control state,
// changed under one mutex with short critical sections.
type Hub struct {
	cfg     Config
	mu      sync.Mutex
	streams map[string]*Stream
	// published is closed and replaced whenever a stream is published, to
	// wake Await callers.
	published chan struct{}
}

// New returns an empty hub.
func New(cfg Config) *Hub {
	if cfg.RingPackets <= 0 || cfg.RingPackets&(cfg.RingPackets-1) != 0 {
		panic(fmt.Sprintf("hub: ring size %d is not a power of two", cfg.RingPackets))
	}
	return &Hub{cfg: cfg, streams: make(map[string]*Stream), published: make(chan struct{})}
}

// Publish registers pub as the publisher of the named stream, which sends
// the given codecs (one per negotiated track); the stream is ready for
// viewers once that many tracks were added. A stream whose publisher left
// less than ReconnectGrace ago is taken over if the codecs match, and ended
// (its viewers get ErrCodecChanged) if they do not. The publisher feeds
// the stream through the Writer returned.
func (h *Hub) Publish(name string, pub Publisher, codecs []media.Codec) (*Writer, error) {
	h.mu.Lock()
	old, ok := h.streams[name]
	if ok {
		err := old.reattach(pub, codecs)
		if err == nil || errors.Is(err, ErrBusy) {
			h.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return &Writer{s: old, pub: pub}, nil
		}
		delete(h.streams, name)
		defer old.end(err) // after the unlock: end removes under h.mu
	}
	s := newStream(h, name, pub, len(codecs))
	h.streams[name] = s
	close(h.published)
	h.published = make(chan struct{})
	h.mu.Unlock()
	return &Writer{s: s, pub: pub}, nil
}

// Lookup returns the live stream with that name.
func (h *Hub) Lookup(name string) (*Stream, error) {
	h.mu.Lock()
	s, ok := h.streams[name]
	h.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	return s, nil
}

// Streams returns the live streams in no particular order.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*Stream, 0, len(h.streams))
	for _, s := range h.streams {
		out = append(out, s)
	}
	return out
}

func (h *Hub) now() time.Time {
	if h.cfg.Now != nil {
		return h.cfg.Now()
	}
	return time.Now()
}

func (h *Hub) remove(s *Stream) {
	h.mu.Lock()
	if h.streams[s.name] == s {
		delete(h.streams, s.name)
	}
	h.mu.Unlock()
}
