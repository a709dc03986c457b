package ingest

import (
	"sync"
	"time"

	"github.com/pion/rtp"
)

// pushState is WriteRTP's: the lock that makes the track one writer at a
// time, and the timer that stands in for ReadFrom's read deadline.
type pushState struct {
	mu     sync.Mutex
	timer  *time.Timer
	armed  time.Time // when timer fires; zero when stopped
	closed bool
}

// WriteRTP takes one received packet from a push-mode source (an RTSP
// session's packet callback): the payload is copied, so pkt may be reused
// at once. Safe for concurrent use; while the reorder window waits for a
// gap a timer NACKs again and gives up on time when no packet comes.
func (t *Track) WriteRTP(pkt *rtp.Packet) { t.WriteRTPAt(pkt, time.Now()) }

// WriteRTPAt is WriteRTP for a packet that arrived at now, earlier: one
// held while the source changed hands (a publisher detached from pion)
// is judged by the reorder window as of its arrival.
func (t *Track) WriteRTPAt(pkt *rtp.Packet, now time.Time) {
	t.pushed.mu.Lock()
	defer t.pushed.mu.Unlock()
	if t.pushed.closed {
		return
	}
	// pion's Unmarshal has already taken any padding off the payload.
	t.received(&pkt.Header, pkt.Payload, now)
	t.armPush()
}

// armPush sets the timer to the window's next deadline, under push.mu.
func (t *Track) armPush() {
	dl, ok := t.wake()
	if !ok {
		if !t.pushed.armed.IsZero() {
			t.pushed.timer.Stop()
			t.pushed.armed = time.Time{}
		}
		return
	}
	if dl.Equal(t.pushed.armed) {
		return
	}
	t.pushed.armed = dl
	if t.pushed.timer == nil {
		t.pushed.timer = time.AfterFunc(time.Until(dl), t.pushTick)
		return
	}
	t.pushed.timer.Reset(time.Until(dl))
}

func (t *Track) pushTick() {
	t.pushed.mu.Lock()
	defer t.pushed.mu.Unlock()
	if t.pushed.closed {
		return
	}
	t.pushed.armed = time.Time{}
	t.tick(time.Now())
	t.armPush()
}

// Close stops WriteRTP's timer; packets written after it are dropped. A
// track read by ReadFrom ends with its reader instead.
func (t *Track) Close() {
	t.pushed.mu.Lock()
	defer t.pushed.mu.Unlock()
	t.pushed.closed = true
	if t.pushed.timer != nil {
		t.pushed.timer.Stop()
	}
}
