package whep

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/rtc"
)

// viewersPerWorker is how many viewers of a stream one egress worker
// serves before the stream gets another worker.
const viewersPerWorker = 64

// frameWait bounds how long a worker waits for the rest of a video frame
// before it forwards the packets it has (see worker.run).
const frameWait = 2 * time.Millisecond

// Fanout runs the egress workers: per stream a few goroutines, each
// forwarding the ring to many viewers, instead of one goroutine per viewer.
// A write to the ring wakes each worker once, not every viewer, and a
// worker drains all its viewers' cursors in one pass: the scheduler's cost
// is paid per packet and worker rather than per packet and viewer.
type Fanout struct {
	mu        sync.Mutex
	workers   map[*hub.Stream][]*worker
	frameWait time.Duration // how long a worker waits for the rest of a frame
}

// NewFanout returns a Fanout without workers.
func NewFanout() *Fanout {
	return &Fanout{workers: make(map[*hub.Stream][]*worker), frameWait: frameWait}
}

type worker struct {
	st        *hub.Stream
	frameWait time.Duration

	mu       sync.Mutex // held for a whole pass; guards sessions
	sessions []*Session

	kick   chan struct{} // a session was added: run a pass now
	passes atomic.Uint64 // passes over the sessions so far
	wakes  atomic.Uint64 // wake-ups by the stream's writes so far
	quit   chan struct{} // closed when the last session left
	done   chan struct{} // closed when run returns
}

// add gives a connected session's cursor to a worker of its stream.
func (f *Fanout) add(s *Session) {
	f.mu.Lock()
	var w *worker
	for _, c := range f.workers[s.stream] {
		c.mu.Lock()
		n := len(c.sessions)
		c.mu.Unlock()
		if n < viewersPerWorker {
			w = c
			break
		}
	}
	if w == nil {
		w = &worker{st: s.stream, frameWait: f.frameWait, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
		f.workers[s.stream] = append(f.workers[s.stream], w)
		go w.run()
	}
	w.mu.Lock()
	w.sessions = append(w.sessions, s)
	s.worker = w
	w.mu.Unlock()
	f.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// remove takes a session from its worker; once it returns, the worker no
// longer touches the session. A worker without sessions stops, and remove
// waits for it.
func (f *Fanout) remove(s *Session) {
	f.mu.Lock()
	w := s.worker
	if w == nil {
		f.mu.Unlock()
		return
	}
	w.mu.Lock() // waits for a pass in progress
	for i, x := range w.sessions {
		if x == s {
			w.sessions = append(w.sessions[:i], w.sessions[i+1:]...)
			break
		}
	}
	empty := len(w.sessions) == 0
	w.mu.Unlock()
	if empty {
		ws := f.workers[w.st]
		for i, x := range ws {
			if x == w {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(f.workers, w.st)
		} else {
			f.workers[w.st] = ws
		}
		close(w.quit)
	}
	f.mu.Unlock()
	if empty {
		<-w.done
	}
}

func (w *worker) run() {
	defer close(w.done)
	ended := w.st.Done()
	// The worker's own queue of datagrams: a pass's packets to all its
	// viewers leave with one system call at its end, each viewer's run of
	// a frame as one GSO datagram.
	batch := rtc.NewBatch()
	// A write in the middle of a video frame (the publisher's burst of its
	// packets) does not start a pass: the worker waits for the frame's
	// last packet, at most frameWait, and passes once for the whole frame.
	waiter := hub.NewWaiter()
	frame := time.NewTimer(time.Hour)
	frame.Stop()
	waiting := false
	pass := true
	for {
		// Taken before the pass: a write during the pass closes it.
		// While a frame is open only its end (or another track's
		// packet) wakes the worker, not each packet of the burst.
		var wake <-chan struct{}
		if pass {
			wake = w.st.Wait(waiter)
		} else {
			wake = w.st.WaitFrameEnd(waiter)
		}
		if !pass && !w.st.FrameOpen() {
			pass = true // the frame ended before wake was taken
		}
		if pass {
			if waiting {
				waiting = false
				frame.Stop()
			}
			w.mu.Lock()
			for _, s := range w.sessions {
				s.pump(batch)
			}
			w.mu.Unlock()
			w.passes.Add(1)
			batch.Flush()
		}
		pass = true
		select {
		case <-wake:
			w.wakes.Add(1)
			if w.st.FrameOpen() {
				pass = false
				if !waiting {
					waiting = true
					frame.Reset(w.frameWait)
				}
			}
		case <-frame.C:
			waiting = false
		case <-ended:
			ended = nil // the sessions learn it in the pass; wait for them to leave
		case <-w.kick:
		case <-w.quit:
			return
		}
	}
}
