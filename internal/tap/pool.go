package tap

import (
	"context"
	"sync"

	"github.com/sluice-media/sluice/internal/hub"
)

// feedUnits is how many units a feed keeps for its subscribers: about
// 6 s of 30 fps video with its AAC audio. A subscriber that falls further
// behind (a recorder on a stalled disk) skips to a newer keyframe.
const feedUnits = 512

// Pool shares the work of reading a stream among its outputs: LL-HLS and
// a recording of the same stream with the same options get one Reader,
// so one cursor and one set of depacketizers between them (and one demand
// of a derived audio track, whose transcoder the stream's other consumers
// share too). The Reader runs in a goroutine of the pool's while anything
// is subscribed, and stops when the last Subscription closes.
type Pool struct {
	mu    sync.Mutex
	feeds map[feedKey]*feed
}

// NewPool returns an empty pool.
func NewPool() *Pool {
	return &Pool{feeds: make(map[feedKey]*feed)}
}

// feedKey says which subscriptions can share a Reader: the same stream
// and options.
type feedKey struct {
	st      *hub.Stream
	audio   Audio
	maxWait int64
}

func keyOf(st *hub.Stream, opt Options) feedKey {
	return feedKey{st: st, audio: opt.Audio, maxWait: int64(opt.MaxWait)}
}

// Running returns the number of Readers the pool runs.
func (p *Pool) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.feeds)
}

// Open subscribes to st's units with opt, starting a Reader if none with
// these options runs. It waits, bounded by ctx, until the Reader is open.
// The Subscription's first unit is a video keyframe (for streams with
// video).
func (p *Pool) Open(ctx context.Context, st *hub.Stream, opt Options) (*Subscription, error) {
	k := keyOf(st, opt)
	p.mu.Lock()
	f := p.feeds[k]
	if f == nil {
		f = p.start(k, st, opt)
	}
	f.subs++
	p.mu.Unlock()

	s := &Subscription{f: f}
	select {
	case <-f.ready:
	case <-ctx.Done():
		s.Close()
		return nil, ctx.Err()
	}
	if f.err != nil {
		s.Close()
		return nil, f.err
	}
	f.subscribe(s)
	return s, nil
}

// start runs a feed for k; p.mu is held.
func (p *Pool) start(k feedKey, st *hub.Stream, opt Options) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{pool: p, key: k, cancel: cancel, ready: make(chan struct{}), done: make(chan struct{}),
		wake: make(chan struct{}), units: make([]*Unit, feedUnits)}
	p.feeds[k] = f
	go f.run(ctx, st, opt)
	return f
}

// drop forgets f, if it is still the feed for its key.
func (p *Pool) drop(f *feed) {
	p.mu.Lock()
	if p.feeds[f.key] == f {
		delete(p.feeds, f.key)
	}
	p.mu.Unlock()
}

// feed is one running Reader and the units it made, kept for its
// subscribers in a ring.
type feed struct {
	pool   *Pool
	key    feedKey
	cancel context.CancelFunc
	subs   int // guarded by pool.mu

	ready        chan struct{} // closed once the Reader is open, or failed
	err          error         // why it failed to open
	video, audio *Track
	audioErr     error

	done chan struct{} // closed when run returns

	mu      sync.Mutex
	units   []*Unit // ring: unit n is at n % len
	head    uint64  // number of units made
	lastKey uint64  // position+1 of the newest video keyframe, 0 if none
	ended   error   // the Reader's end, once it came
	wake    chan struct{}
	waiting bool
}

func (f *feed) run(ctx context.Context, st *hub.Stream, opt Options) {
	defer close(f.done)
	defer f.pool.drop(f)
	r, err := Open(ctx, st, opt)
	if err != nil {
		f.err = err
		close(f.ready)
		return
	}
	defer r.Close()
	f.video, f.audio, f.audioErr = r.Video(), r.Audio(), r.AudioErr()
	close(f.ready)
	for {
		u, err := r.Next(ctx)
		if err != nil {
			f.push(nil, err)
			return
		}
		f.push(u, nil)
	}
}

// push adds a unit, or the end.
func (f *feed) push(u *Unit, end error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if u != nil {
		f.units[f.head%uint64(len(f.units))] = u
		f.head++
		if u.Key && u.Track.IsVideo() {
			f.lastKey = f.head
		}
	} else {
		f.ended = end
	}
	if f.waiting {
		f.waiting = false
		close(f.wake)
		f.wake = make(chan struct{})
	}
}

// subscribe places a new subscriber: at the newest video keyframe still
// held, else at the next unit (waiting there for a keyframe, with video).
func (f *feed) subscribe(s *Subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s.pos = f.head
	if f.lastKey > 0 && f.head-(f.lastKey-1) <= uint64(len(f.units)) {
		s.pos = f.lastKey - 1
	}
	s.needKey = f.video != nil
}

// Subscription reads a pooled Reader's units. It is used by one
// goroutine; Close it when done.
type Subscription struct {
	f       *feed
	pos     uint64
	needKey bool // skip to a video keyframe (at the start, after a skip)
	closed  bool
}

// Video is the video track, or nil.
func (s *Subscription) Video() *Track { return s.f.video }

// Audio is the audio track, or nil.
func (s *Subscription) Audio() *Track { return s.f.audio }

// AudioErr says why the stream's audio is left out, or nil (see
// Reader.AudioErr).
func (s *Subscription) AudioErr() error { return s.f.audioErr }

// Next returns the next unit, shared with the other subscribers: read
// only. It blocks until one is ready, the stream ends (hub.ErrEnded, once
// the units held are read) or ctx is done. A subscriber that fell more
// than the feed holds behind goes on at the next keyframe.
func (s *Subscription) Next(ctx context.Context) (*Unit, error) {
	f := s.f
	for {
		f.mu.Lock()
		if n := uint64(len(f.units)); f.head-s.pos > n {
			s.pos = f.head - n
			s.needKey = f.video != nil
		}
		for s.pos < f.head {
			u := f.units[s.pos%uint64(len(f.units))]
			s.pos++
			if s.needKey {
				if !u.Key || !u.Track.IsVideo() {
					continue
				}
				s.needKey = false
			}
			f.mu.Unlock()
			return u, nil
		}
		if f.ended != nil {
			err := f.ended
			f.mu.Unlock()
			return nil, err
		}
		f.waiting = true
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close ends the subscription; the last one stops the Reader and waits
// for it.
func (s *Subscription) Close() {
	if s.closed {
		return
	}
	s.closed = true
	f := s.f
	p := f.pool
	p.mu.Lock()
	f.subs--
	last := f.subs == 0
	if last && p.feeds[f.key] == f {
		delete(p.feeds, f.key)
	}
	p.mu.Unlock()
	if last {
		f.cancel()
		<-f.done
	}
}
