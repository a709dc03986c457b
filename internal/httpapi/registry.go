package httpapi

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// session is what the HTTP edge needs of a WHIP or WHEP session.
type session interface {
	ID() string
	PeerConnection() *webrtc.PeerConnection
	Answer() string
	Close(reason error)
	Done() <-chan struct{}
}

type entry struct {
	kind    string // "whip" or "whep"
	stream  string
	ip      netip.Addr
	remote  string
	created time.Time
	token   [sha256.Size]byte // hash of the creating request's token; zero if none
	session session

	mu   sync.Mutex // serialises PATCHes; guards etag after registration
	etag string
}

// registry holds the open sessions by id, and the session limits: in all
// and per client address. Sessions being set up count as well.
type registry struct {
	max, maxPerIP int
	mu            sync.Mutex
	byID          map[string]*entry
	pending       int
	perIP         map[netip.Addr]int // registered + pending
	closed        bool               // set by closeAll: late arrivals are closed at once
}

func newRegistry(max, maxPerIP int) *registry {
	return &registry{max: max, maxPerIP: maxPerIP, byID: make(map[string]*entry), perIP: make(map[netip.Addr]int)}
}

// reserve takes a place for a session being set up from ip; release gives
// the pending place back once the session is registered or has failed.
func (r *registry) reserve(ip netip.Addr) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.max > 0 && len(r.byID)+r.pending >= r.max {
		return nil, fmt.Errorf("%w (%d)", errTooManySessions, r.max)
	}
	if r.maxPerIP > 0 && ip.IsValid() && r.perIP[ip] >= r.maxPerIP {
		return nil, fmt.Errorf("%w (%d)", errTooManyFromIP, r.maxPerIP)
	}
	r.pending++
	r.perIP[ip]++
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.pending--
			r.dropIP(ip)
			r.mu.Unlock()
		})
	}, nil
}

func (r *registry) dropIP(ip netip.Addr) {
	if r.perIP[ip]--; r.perIP[ip] <= 0 {
		delete(r.perIP, ip)
	}
}

// add registers a new session, unless it already ended or the server is
// shutting down.
func (r *registry) add(e *entry) {
	r.mu.Lock()
	closed := r.closed
	if !closed {
		r.byID[e.session.ID()] = e
		r.perIP[e.ip]++
	}
	r.mu.Unlock()
	if closed {
		e.session.Close(nil)
		return
	}
	select {
	case <-e.session.Done():
		r.remove(e)
	default:
	}
}

func (r *registry) remove(e *entry) {
	if e == nil || e.session == nil {
		return
	}
	r.mu.Lock()
	if r.byID[e.session.ID()] == e {
		delete(r.byID, e.session.ID())
		r.dropIP(e.ip)
	}
	r.mu.Unlock()
}

// lookup returns the session with that id if it belongs to that kind and
// stream: a session URL is only valid in full.
func (r *registry) lookup(kind, stream, id string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.byID[id]
	if e == nil || e.kind != kind || e.stream != stream {
		return nil
	}
	return e
}

// byIDOnly returns the session with that id, whatever its kind and stream.
func (r *registry) byIDOnly(id string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byID[id]
}

// all returns the registered sessions in no particular order.
func (r *registry) all() []*entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*entry, 0, len(r.byID))
	for _, e := range r.byID {
		out = append(out, e)
	}
	return out
}

// publisher returns the WHIP session of a stream, if one is registered.
func (r *registry) publisher(stream string) *entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.byID {
		if e.kind == "whip" && e.stream == stream {
			return e
		}
	}
	return nil
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.byID)
}

// closeAll closes every session in parallel and waits for all of them.
func (r *registry) closeAll() {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	all := r.all()
	var wg sync.WaitGroup
	for _, e := range all {
		wg.Go(func() { e.session.Close(nil) })
	}
	wg.Wait()
}
