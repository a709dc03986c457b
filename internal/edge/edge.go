// Package edge keeps the open sessions of the edges other than WebRTC
// (RTMP, SRT) for the JSON API: what each is, and a way to end one. The
// RTMP and SRT servers share one Table, which the API lists beside its
// WHIP and WHEP sessions.
package edge

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Session is one RTMP or SRT publisher or reader as the API shows it.
type Session struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"` // rtmp-publish, rtmp-read, srt-publish, srt-read
	Stream    string    `json:"stream"`
	Remote    string    `json:"remote"`
	Created   time.Time `json:"created"`
	Publisher bool      `json:"-"`
}

// kickWait bounds how long Kick waits for a session's goroutine to leave
// its stream.
const kickWait = 5 * time.Second

type item struct {
	s     Session
	close func()
	done  chan struct{} // closed by the remove func
}

// Table holds the open sessions by id. The zero value is not usable: use
// NewTable. A nil *Table takes nothing and lists nothing.
type Table struct {
	mu   sync.Mutex
	byID map[string]*item
	seq  atomic.Uint64
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{byID: map[string]*item{}} }

// Add registers a session (its ID is given by the table: the kind's
// protocol and a sequence number) and returns it with the func that
// removes it, which its owner calls once it has left its stream. closeFn
// ends the session (closes its connection); it may be called from any
// goroutine, more than once.
func (t *Table) Add(s Session, closeFn func()) (Session, func()) {
	if t == nil {
		return s, func() {}
	}
	proto, _, _ := cut(s.Kind)
	s.ID = fmt.Sprintf("%s-%d", proto, t.seq.Add(1))
	it := &item{s: s, close: closeFn, done: make(chan struct{})}
	t.mu.Lock()
	t.byID[s.ID] = it
	t.mu.Unlock()
	var once sync.Once
	return s, func() {
		once.Do(func() {
			t.mu.Lock()
			delete(t.byID, s.ID)
			t.mu.Unlock()
			close(it.done)
		})
	}
}

func cut(kind string) (string, string, bool) {
	for i := range len(kind) {
		if kind[i] == '-' {
			return kind[:i], kind[i+1:], true
		}
	}
	return kind, "", false
}

// Sessions lists the open sessions, oldest first.
func (t *Table) Sessions() []Session {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	out := make([]Session, 0, len(t.byID))
	for _, it := range t.byID {
		out = append(out, it.s)
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b Session) int { return a.Created.Compare(b.Created) })
	return out
}

// Get returns the session with that id.
func (t *Table) Get(id string) (Session, bool) {
	if t == nil {
		return Session{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	it := t.byID[id]
	if it == nil {
		return Session{}, false
	}
	return it.s, true
}

// Publisher returns the stream's publisher, if it is one of the table's.
func (t *Table) Publisher(stream string) (Session, bool) {
	if t == nil {
		return Session{}, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, it := range t.byID {
		if it.s.Publisher && it.s.Stream == stream {
			return it.s, true
		}
	}
	return Session{}, false
}

// Kick ends the session with that id and waits (up to 5 s) until it has
// left its stream; false if there is no such session.
func (t *Table) Kick(id string) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	it := t.byID[id]
	t.mu.Unlock()
	if it == nil {
		return false
	}
	it.close()
	select {
	case <-it.done:
	case <-time.After(kickWait):
	}
	return true
}

// KickPublisher ends the stream's publisher if it is one of the table's,
// waiting as Kick does; false if it is not.
func (t *Table) KickPublisher(stream string) bool {
	s, ok := t.Publisher(stream)
	return ok && t.Kick(s.ID)
}
