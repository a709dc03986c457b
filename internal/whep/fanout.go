package whep

import (
	"sync"

	"github.com/sluice-media/sluice/internal/hub"
)

// viewersPerWorker is how many viewers of a stream one egress worker
// serves before the stream gets another worker.
const viewersPerWorker = 64

// Fanout runs the egress workers: per stream a few goroutines, each
// forwarding the ring to many viewers, instead of one goroutine per viewer.
// A write to the ring wakes each worker once, not every viewer, and a
// worker drains all its viewers' cursors in one pass: the scheduler's cost
// is paid per packet and worker rather than per packet and viewer.
type Fanout struct {
	mu      sync.Mutex
	workers map[*hub.Stream][]*worker
}

// NewFanout returns a Fanout without workers.
func NewFanout() *Fanout { return &Fanout{workers: make(map[*hub.Stream][]*worker)} }

type worker struct {
	st *hub.Stream

	mu       sync.Mutex // held for a whole pass; guards sessions
	sessions []*Session

	kick chan struct{} // a session was added: run a pass now
	quit chan struct{} // closed when the last session left
	done chan struct{} // closed when run returns
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
		w = &worker{st: s.stream, kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
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
	for {
		// Taken before the pass: a write during the pass closes it.
		wake := w.st.WaitChan()
		w.mu.Lock()
		for _, s := range w.sessions {
			s.pump()
		}
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ended:
			ended = nil // the sessions learnt it in the pass; wait for them to leave
		case <-w.kick:
		case <-w.quit:
			return
		}
	}
}
