package hls

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// Server owns the muxers of all streams: one session per stream muxed,
// started on demand and ended with its stream, when idle, or by Close.
type Server struct {
	cfg    Config
	hub    *hub.Hub
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool

	noAudio sync.Once // "HLS without audio" is logged once per server

	muxers   atomic.Int64  // muxers running
	segments atomic.Uint64 // segments cut, by all muxers
}

// Stats counts a Server's work, for the metrics.
type Stats struct {
	Muxers   int    // muxers running now
	Segments uint64 // segments completed (cut at a keyframe after SegmentDuration)
}

// Stats returns the counters so far.
func (s *Server) Stats() Stats {
	return Stats{Muxers: int(s.muxers.Load()), Segments: s.segments.Load()}
}

// New returns a Server for the streams of h. With cfg.Always it starts
// muxing every stream as it is published.
func New(cfg Config, h *hub.Hub, log *slog.Logger) *Server {
	cfg.defaults()
	if cfg.Taps == nil {
		cfg.Taps = tap.NewPool()
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, hub: h, log: log, ctx: ctx, cancel: cancel, sessions: map[string]*session{}}
	if cfg.Always {
		s.wg.Add(1)
		go s.watch()
	}
	return s
}

// Serve answers a request for one file of a stream's LL-HLS output
// (index.m3u8, a media playlist, init file, segment or part), starting
// the stream's muxer if needed; the caller has authorised it. A request
// that finds no muxer ready, or no such file, gets an error and nothing
// written: hub.ErrNotFound, ErrNotReady, ErrNoFile, ErrClosed,
// tap.ErrNoTracks or the request context's error.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, stream string) error {
	ss, err := s.session(stream)
	if err != nil {
		return err
	}
	ss.touch()
	mx, err := ss.wait(r.Context(), s.cfg.StartTimeout)
	if err != nil {
		return err
	}
	if !mx.handle(w, r) {
		return fmt.Errorf("%w: %s", ErrNoFile, r.URL.Path)
	}
	return nil
}

// Muxing reports whether a stream's muxer is running (for tests and the
// API).
func (s *Server) Muxing(stream string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.sessions[stream]
	return ss != nil && !ss.ended()
}

// session returns the running session of the stream now published under
// that name, starting one if there is none.
func (s *Server) session(name string) (*session, error) {
	st, err := s.hub.Lookup(name)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if ss := s.sessions[name]; ss != nil && ss.st == st && !ss.ended() {
		return ss, nil
	}
	ss := newSession(s, st)
	s.sessions[name] = ss
	s.wg.Add(1)
	go ss.run()
	return ss, nil
}

// remove forgets a session that ended.
func (s *Server) remove(ss *session) {
	s.mu.Lock()
	if s.sessions[ss.st.Name()] == ss {
		delete(s.sessions, ss.st.Name())
	}
	s.mu.Unlock()
}

// watch starts a session for every stream published (Config.Always).
func (s *Server) watch() {
	defer s.wg.Done()
	for {
		published := s.hub.Published()
		for _, st := range s.hub.Streams() {
			if _, err := s.session(st.Name()); err != nil && s.ctx.Err() != nil {
				return
			}
		}
		select {
		case <-published:
		case <-s.ctx.Done():
			return
		}
	}
}

// Close stops every muxer (requests waiting on one are answered 404) and
// waits for their goroutines.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}
