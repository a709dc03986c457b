package hls

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/tap"
)

// session muxes one stream: its goroutine reads the stream (a tap.Pool
// subscription, shared with a recording of the stream)
// and writes the muxer until the stream ends, the session is idle for
// CloseAfter (unless Always), or the server closes.
type session struct {
	srv    *Server
	st     *hub.Stream
	ctx    context.Context
	cancel context.CancelFunc

	lastReq atomic.Int64 // unix nanos of the newest request
	idle    *time.Timer

	started chan struct{} // closed once mx or err is set
	mx      *muxer
	err     error
	done    chan struct{} // closed when run returns
}

func newSession(s *Server, st *hub.Stream) *session {
	ctx, cancel := context.WithCancel(s.ctx)
	ss := &session{srv: s, st: st, ctx: ctx, cancel: cancel,
		started: make(chan struct{}), done: make(chan struct{})}
	ss.touch()
	if !s.cfg.Always {
		ss.idle = time.AfterFunc(s.cfg.CloseAfter, ss.checkIdle)
	}
	return ss
}

// touch notes a request.
func (ss *session) touch() { ss.lastReq.Store(time.Now().UnixNano()) }

// checkIdle ends the session if no request came for CloseAfter, or
// checks again when that time will have passed.
func (ss *session) checkIdle() {
	idle := time.Since(time.Unix(0, ss.lastReq.Load()))
	if left := ss.srv.cfg.CloseAfter - idle; left > 0 {
		ss.idle.Reset(left)
		return
	}
	ss.cancel()
}

func (ss *session) ended() bool {
	select {
	case <-ss.done:
		return true
	default:
		return ss.ctx.Err() != nil
	}
}

func (ss *session) run() {
	s := ss.srv
	name := ss.st.Name()
	log := s.log.With("stream", name)
	defer s.wg.Done()
	defer close(ss.done)
	defer s.remove(ss)
	defer ss.cancel()
	if ss.idle != nil {
		defer ss.idle.Stop()
	}

	r, err := s.cfg.Taps.Open(ss.ctx, ss.st, tap.Options{Audio: tap.AudioAAC})
	if err != nil {
		ss.fail(err)
		return
	}
	defer r.Close()
	if err := r.AudioErr(); err != nil {
		s.noAudio.Do(func() { log.Warn("HLS without audio", "err", err) })
	}
	mx, err := newMuxer(s.cfg, r.Video(), r.Audio(), func() { ss.st.RequestKeyframe() }, log)
	if err != nil {
		ss.fail(err)
		return
	}
	defer mx.close()
	mx.segments = &s.segments
	s.muxers.Add(1)
	defer s.muxers.Add(-1)
	ss.mx = mx
	close(ss.started)
	log.Info("HLS muxer started", "video", codecOf(r.Video()), "audio", codecOf(r.Audio()))
	for {
		u, err := r.Next(ss.ctx)
		if err != nil {
			reason := "stream ended"
			if ss.ctx.Err() != nil {
				reason = "idle"
				if s.ctx.Err() != nil {
					reason = "server closing"
				}
			}
			log.Info("HLS muxer stopped", "reason", reason)
			return
		}
		if err := mx.write(u); err != nil {
			log.Warn("HLS muxer stopped", "err", err)
			return
		}
	}
}

func (ss *session) fail(err error) {
	if ss.ctx.Err() == nil && !errors.Is(err, hub.ErrEnded) {
		ss.srv.log.Warn("HLS not available", "stream", ss.st.Name(), "err", err)
	}
	ss.err = err
	close(ss.started)
}

// wait returns the muxer once its first segment is complete.
func (ss *session) wait(ctx context.Context, timeout time.Duration) (*muxer, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	notReady := fmt.Errorf("%w: no segment within %v (no keyframe or no media from the publisher)", ErrNotReady, timeout)
	select {
	case <-ss.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, notReady
	}
	if ss.err != nil {
		if errors.Is(ss.err, hub.ErrEnded) || errors.Is(ss.err, context.Canceled) {
			return nil, fmt.Errorf("%w: %q ended", hub.ErrNotFound, ss.st.Name())
		}
		return nil, ss.err
	}
	select {
	case <-ss.mx.ready:
		return ss.mx, nil
	case <-ss.done:
		return nil, fmt.Errorf("%w: %q ended", hub.ErrNotFound, ss.st.Name())
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		return nil, notReady
	}
}

func codecOf(t *tap.Track) string {
	if t == nil {
		return "none"
	}
	return string(t.Codec)
}
