// Package events is sluice's in-process event bus: typed events about
// streams and sessions, delivered to subscribers that can never block the
// code that publishes them (and so never block media).
package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// Kind names an event type. The values are part of the webhook interface.
type Kind string

// Event kinds.
const (
	StreamPublished   Kind = "stream.published"
	StreamUnpublished Kind = "stream.unpublished"
	ViewerJoined      Kind = "viewer.joined"
	ViewerLeft        Kind = "viewer.left"
	SessionFailed     Kind = "session.failed"
)

// Event is one thing that happened. Reason is set for SessionFailed (and
// for the unpublished/left event that follows it).
type Event struct {
	Kind    Kind      `json:"kind"`
	Time    time.Time `json:"time"`
	Stream  string    `json:"stream"`
	Session string    `json:"session,omitempty"`
	Remote  string    `json:"remote,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// Bus fans events out to subscribers. Publish never waits: a subscriber
// whose buffer is full loses the event, and the loss is counted.
type Bus struct {
	mu   sync.RWMutex
	subs map[*Subscription]struct{}
}

// NewBus returns a bus without subscribers.
func NewBus() *Bus { return &Bus{subs: make(map[*Subscription]struct{})} }

// Subscription receives events on C until Close.
type Subscription struct {
	C       <-chan Event
	c       chan Event
	bus     *Bus
	dropped atomic.Uint64
	once    sync.Once
}

// Subscribe returns a subscription with a buffer of n events.
func (b *Bus) Subscribe(n int) *Subscription {
	c := make(chan Event, max(n, 1))
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Publish delivers e to every subscriber that has room, without waiting.
func (b *Bus) Publish(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.dropped.Add(1)
		}
	}
}

// Dropped is how many events this subscriber lost to a full buffer.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes and closes C.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
		close(s.c)
	})
}
