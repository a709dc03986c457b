package hub

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Cursor is one viewer's read position in a stream's ring. A cursor is used
// by one goroutine; it never blocks the writer.
//
// Video tracks start (and restart after falling behind) at a keyframe: a
// cursor joins at the newest cached keyframe (the GOP cache) and, if the
// ring holds none, asks the publisher for one and drops video until it comes.
type Cursor struct {
	s      *Stream
	tracks []*trackState
	per    []cursorTrack
	pos    uint64
	gen    uint32 // publisher generation of the packets being delivered
	closed atomic.Bool
	skips  atomic.Uint64

	groups   []cursorGroup // simulcast groups (layer_cursor.go)
	keyOnly  bool          // video: deliver keyframes only
	switches atomic.Uint64
	waiter   *Waiter // Next's, made at its first wait

	// hold is the lowest position the reader may still read, for the
	// writer's reuse of ring memory (pool.go); held is the reader's copy
	// of the value it last published.
	hold     atomic.Uint64
	held     uint64
	released atomic.Bool
	own      bool       // OwnPackets
	copies   packetCopy // OwnPackets' memory
}

type cursorTrack struct {
	next     uint64 // packets of this track before next were already delivered
	waitKey  bool   // video: drop packets until a keyframe at or after waitFrom
	waitFrom uint64
	restart  bool // the next delivered packet follows a discontinuity
	group    int  // index into Cursor.groups; -1 without simulcast
}

// Join opens a cursor on the stream positioned at the newest cached keyframe.
// The caller must Close it.
func (s *Stream) Join() (*Cursor, error) {
	if n := s.viewers.Add(1); s.hub.cfg.MaxViewersPerStream > 0 && int(n) > s.hub.cfg.MaxViewersPerStream {
		s.viewers.Add(-1)
		return nil, fmt.Errorf("%w (%d)", ErrTooManyViewers, s.hub.cfg.MaxViewersPerStream)
	}
	select {
	case <-s.done:
		s.viewers.Add(-1)
		return nil, ErrEnded
	default:
	}
	s.wmu.Lock()
	tracks := append([]*trackState(nil), s.tracks...)
	gen := s.gen
	s.wmu.Unlock()
	c := &Cursor{s: s, tracks: tracks, per: make([]cursorTrack, len(tracks)), gen: gen, held: noHold}
	c.hold.Store(noHold) // TryNext publishes its position before it reads
	s.holds.add(&c.hold)
	c.initGroups()
	c.SeekKeyframe()
	return c, nil
}

// SeekKeyframe moves the cursor to the earliest of the newest cached
// keyframes of its video tracks (or the head if none is cached) and makes
// every video track wait for a keyframe from there on. Only the cursor's
// reader may call it.
func (c *Cursor) SeekKeyframe() {
	c.settleGroups() // a pending layer switch happens at the seek
	start := c.s.ring.head.Load()
	var missing []int
	for i, t := range c.tracks {
		if t.isKey == nil || !c.selected(i) {
			continue
		}
		if k, ok := c.s.keyframeStart(t); ok {
			start = min(start, k)
		} else {
			missing = append(missing, i)
		}
	}
	c.pos = start
	for i, t := range c.tracks {
		c.per[i].restart = true
		if t.isKey != nil {
			c.per[i].waitKey, c.per[i].waitFrom = true, start
		}
	}
	oldest := c.s.ring.oldest()
	for _, i := range missing {
		// No keyframe cached: the next one indexed may have begun before
		// start (its SPS written, its IDR slice not yet); take it too,
		// instead of waiting a whole GOP for the one after.
		c.per[i].waitFrom = oldest
		c.s.RequestTrackKeyframe(i) // the stream's, without simulcast
	}
}

// Next returns the next packet to deliver; it, and its Payload, may be
// read until the cursor's next call (see OwnPackets). restart reports a
// discontinuity before it (first packet, or after a skip): the receiver
// should continue its sequence numbers without a gap. Next blocks until a
// packet is written, the stream ends (ErrEnded) or ctx is done.
func (c *Cursor) Next(ctx context.Context) (p *Packet, restart bool, err error) {
	for {
		p, restart, ok, err := c.TryNext()
		if ok || err != nil {
			return p, restart, err
		}
		// Caught up: take the wake-up channel, then look once more, so
		// that a write in between is not missed.
		if c.waiter == nil {
			c.waiter = NewWaiter()
		}
		ch := c.s.ring.arm(c.waiter, false)
		if p, restart, ok, err = c.TryNext(); ok || err != nil {
			return p, restart, err
		}
		select {
		case <-ch:
		case <-c.s.done:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// TryNext is Next without waiting: ok is false when the cursor has caught
// up with the writer. err is the stream's end reason once it ended and the
// cursor has read everything.
func (c *Cursor) TryNext() (p *Packet, restart, ok bool, err error) {
	r := c.s.ring
	for {
		if c.pos < c.held || c.pos-c.held >= holdStep {
			// Published before the slot is read (pool.go); moving
			// forward, only every holdStep packets.
			c.held = c.pos
			c.hold.Store(c.pos)
		}
		p, lagged := r.get(c.pos)
		if lagged {
			c.skips.Add(1)
			c.SeekKeyframe()
			continue
		}
		if p == nil {
			select {
			case <-c.s.done:
				if c.pos >= r.head.Load() {
					return nil, false, false, c.s.endErr
				}
				continue
			default:
				return nil, false, false, nil
			}
		}
		c.pos++
		if p.Gen > c.gen {
			c.newPublisher(p)
		}
		if p.Track >= len(c.per) {
			continue // a track added after this cursor joined
		}
		ct := &c.per[p.Track]
		if p.Pos < ct.next {
			continue // delivered before a rewind to another track's keyframe
		}
		var g *cursorGroup
		if ct.group >= 0 {
			g = &c.groups[ct.group]
			if p.Track != g.cur && p.Track != g.want {
				continue // another simulcast layer
			}
		}
		if ct.waitKey {
			k, ok := c.s.keyframeStart(c.tracks[p.Track])
			if !ok || k < ct.waitFrom || k > p.Pos {
				if !c.keyOnly || (g != nil && p.Track == g.want && g.want != g.cur) {
					c.s.RequestTrackKeyframe(p.Track) // rate-limited per track
				}
				continue
			}
			if k < p.Pos {
				c.pos = k // the keyframe began earlier (SPS/PPS): go back to it
				continue
			}
			ct.waitKey = false
			if g != nil && p.Track != g.cur {
				// The target layer's keyframe: switch to it here. The
				// viewer's sequence numbers go on across the switch.
				g.cur = p.Track
				ct.restart = true
				c.switches.Add(1)
			}
		} else if g != nil && p.Track != g.cur {
			continue
		}
		if g != nil {
			g.started = true
		}
		ct.next = p.Pos + 1
		restart, ct.restart = ct.restart, false
		if c.keyOnly && p.Marker && c.tracks[p.Track].isKey != nil {
			// Keyframes only: the next frame of this track is delivered
			// only if it is a keyframe; no gap shows in between.
			ct.waitKey, ct.waitFrom, ct.restart = true, p.Pos+1, true
		}
		if c.own {
			p = c.copies.packet(p)
		}
		return p, restart, true, nil
	}
}

// newPublisher restarts every track at the first packet of a publisher
// that took the stream over: video waits for its first keyframe.
func (c *Cursor) newPublisher(p *Packet) {
	c.gen = p.Gen
	c.settleGroups()
	for i, t := range c.tracks {
		c.per[i].restart = true
		if t.isKey != nil {
			c.per[i].waitKey, c.per[i].waitFrom = true, p.Pos
		}
	}
}

// Wait arms w and returns its channel, signalled by the stream's next
// Write. Take it before the last TryNext, then wait on it (and on Done):
// no write is missed. A wake-up may find nothing new.
func (s *Stream) Wait(w *Waiter) <-chan struct{} { return s.ring.arm(w, false) }

// WaitFrameEnd is Wait for a reader that has seen a video frame open
// (FrameOpen) and forwards whole frames: the frame's further packets do
// not signal w, its last one (marker set) does, and so does any packet of
// another track. The reader must bound its wait itself, for a frame whose
// last packet is lost.
func (s *Stream) WaitFrameEnd(w *Waiter) <-chan struct{} { return s.ring.arm(w, true) }

// Skips is how many times the cursor fell behind the ring and jumped ahead.
func (c *Cursor) Skips() uint64 { return c.skips.Load() }

// OwnPackets makes the cursor return copies of the ring's packets, which
// the reader may keep as long as it likes: for readers that keep payload
// slices past their next read (frame assembly, queues, muxers). The
// copies are carved from blocks the collector frees. Call it before the
// first read.
func (c *Cursor) OwnPackets() { c.own = true }

// Close releases the cursor's place among the stream's viewers and its
// hold on the ring's memory. The reader must be done with the packets
// it read (other than OwnPackets' copies).
func (c *Cursor) Close() {
	if c.released.CompareAndSwap(false, true) {
		c.hold.Store(noHold)
		c.s.holds.remove(&c.hold)
	}
	if c.closed.CompareAndSwap(false, true) {
		c.s.viewers.Add(-1)
	}
}
