package tap

import "time"

// interleaver puts the units of the two tracks in presentation order.
// Muxers cut segments and parts in the order samples are written, so a
// segment that starts at a video keyframe must get the audio from that
// time on, not the audio that the transcoder happened to finish before
// the keyframe was whole. A unit goes out once the other track has a later
// one, or once its own track has run maxWait ahead (the other track is
// stalled or silent), so that one track never holds the other for long.
//
// A derived audio track (transcoded) is late in the ring: the transcoder
// that the Reader's demand starts writes the audio of the cached GOP
// after the GOP's video, which the Reader reads at once. Its audio is not
// stalled but behind, so video waits for it, however far it runs ahead in
// media time, through what the Reader reads until the ring (by its
// packets' arrival) has gone maxWait past the Reader's start: the cached
// GOP and its audio. After that the media time rule applies alone, so
// that audio placed far off (a sender report on a wrong clock) cannot
// hold video without bound.
type interleaver struct {
	video, audio *Track
	maxWait      time.Duration
	v, a         fifo
	aligned      bool // audio units have timeline PTS (see timeline.align)

	derived bool  // the audio track is derived, and the start not over
	opened  int64 // the Reader's start, Unix nanoseconds
}

func (q *interleaver) init(video, audio *Track, maxWait time.Duration, derivedAudio bool) {
	q.video, q.audio, q.maxWait = video, audio, maxWait
	q.aligned = video == nil
	q.derived, q.opened = derivedAudio, time.Now().UnixNano()
}

// read notes the arrival (hub.Packet.Arrived) of a packet read.
func (q *interleaver) read(arrived int64) {
	if q.derived && time.Duration(arrived-q.opened) > q.maxWait {
		q.derived = false // the start is over
	}
}

// push queues a unit of the video track (Track set, by videoUnit) or the
// audio track.
func (q *interleaver) push(u *Unit) {
	if u.Track != nil && u.Track == q.video {
		q.v.push(u)
		return
	}
	if q.audio == nil {
		return
	}
	u.Track = q.audio
	q.a.push(u)
	if !q.aligned {
		// Audio that came before any video has no place on the timeline
		// yet; keep no more than maxWait of it.
		for q.a.span() > q.maxWait {
			q.a.pop()
		}
	}
}

// alignAudio gives the queued audio units their timeline PTS.
func (q *interleaver) alignAudio(zero int64) {
	for _, u := range q.a.items[q.a.head:] {
		u.PTS -= zero
	}
	q.aligned = true
}

// pop returns the next unit that may go out, or nil; flush releases
// everything (the stream ended).
func (q *interleaver) pop(flush bool) *Unit {
	vh, ah := q.v.peek(), q.a.peek()
	if ah != nil && !q.aligned {
		if !flush {
			ah = nil
		} else {
			q.a = fifo{} // the stream ended before its video started
			ah = nil
		}
	}
	switch {
	case vh != nil && ah != nil:
		if ah.Time() < vh.Time() {
			return q.a.pop()
		}
		return q.v.pop()
	case vh != nil:
		if q.audio == nil || flush || q.v.span() > q.maxWait && !q.derived {
			return q.v.pop()
		}
	case ah != nil:
		if q.video == nil || flush || q.a.span() > q.maxWait {
			return q.a.pop()
		}
	}
	return nil
}

// fifo is a queue of units that reuses its array.
type fifo struct {
	items []*Unit
	head  int
}

func (f *fifo) push(u *Unit) {
	if f.head > 0 && f.head >= len(f.items)/2 {
		// Move what is left to the front rather than grow the array.
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	f.items = append(f.items, u)
}

func (f *fifo) peek() *Unit {
	if f.head == len(f.items) {
		return nil
	}
	return f.items[f.head]
}

func (f *fifo) pop() *Unit {
	u := f.peek()
	if u != nil {
		f.items[f.head] = nil
		f.head++
	}
	return u
}

// span is how much media time the queue holds.
func (f *fifo) span() time.Duration {
	if f.head == len(f.items) {
		return 0
	}
	return f.items[len(f.items)-1].Time() - f.items[f.head].Time()
}
