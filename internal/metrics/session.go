package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// session is one WHIP or WHEP session's life as the metrics see it: new
// (POST received) → connecting (answered) → connected → closed.
type session struct {
	m     *Metrics
	kind  kind
	e     *streamEntry
	start time.Time

	mu    sync.Mutex
	state state
}

func (s *session) init(m *Metrics, k kind, stream string, start time.Time) {
	s.m, s.kind, s.e, s.start = m, k, m.flows.acquire(stream), start
}

// Negotiated counts the session as created and connecting, and makes fn
// (may be nil) part of the stream's packet totals until Close.
func (s *session) Negotiated(fn CountFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return
	}
	s.state = stateConnecting
	if fn != nil {
		s.m.flows.addFlow(s.e, s.kind, s, fn)
	}
	s.m.created[s.kind].Inc()
	s.m.gauges[s.kind][stateConnecting].Inc()
}

// Connected records the setup time, from the start given to the handle's
// constructor to now.
func (s *session) Connected() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateConnecting {
		return
	}
	s.state = stateConnected
	s.m.gauges[s.kind][stateConnecting].Dec()
	s.m.gauges[s.kind][stateConnected].Inc()
	s.m.setup[s.kind].Observe(time.Since(s.start).Seconds())
}

// Close ends the session: it leaves the session gauges, counts failure
// (FailConnectTimeout, FailICE, or "" for none) and keeps its packets in the
// stream's totals. Call it once the session's media goroutines have
// returned, so that no packet is counted after. It is idempotent.
func (s *session) Close(failure string) {
	s.mu.Lock()
	prev := s.state
	s.state = stateClosed
	s.mu.Unlock()
	if prev == stateClosed {
		return
	}
	if prev == stateConnecting || prev == stateConnected {
		s.m.gauges[s.kind][prev].Dec()
		for i, f := range failureNames {
			if failure == f {
				s.m.iceFail[s.kind][i].Inc()
			}
		}
		s.m.flows.retireFlow(s.e, s.kind, s)
	}
	s.m.flows.release(s.e)
}

// Publisher is one WHIP session's metrics handle. Create it when the POST
// arrives, call Negotiated once the answer is ready, Connected when ICE and
// DTLS are up and Close at the end. It is an RTCP observer for the
// publisher's PeerConnection (see rtc.RTCPObserver).
type Publisher struct {
	session

	// Late and Duplicated count packets the ingest reorder window drops,
	// Unrecovered the sequence numbers it gives up on. They are
	// pre-resolved: Inc and Add are one atomic add.
	Late, Duplicated, Unrecovered prometheus.Counter

	rtcpMu sync.Mutex
	tracks []trackStats
}

// Publisher returns the handle for a new WHIP session on stream whose
// setup began at start (the POST). The caller must Close it.
func (m *Metrics) Publisher(stream string, start time.Time) *Publisher {
	m = m.orDiscard()
	p := &Publisher{}
	p.init(m, whip, stream, start)
	p.Late, p.Duplicated, p.Unrecovered = p.e.children.late, p.e.children.dup, p.e.children.unrecovered
	return p
}

// Viewer is one WHEP session's metrics handle, used like Publisher.
type Viewer struct {
	session

	rtcpMu sync.Mutex
	tracks []trackStats
}

// Viewer returns the handle for a new WHEP session on stream whose setup
// began at start. The caller must Close it.
func (m *Metrics) Viewer(stream string, start time.Time) *Viewer {
	m = m.orDiscard()
	v := &Viewer{}
	v.init(m, whep, stream, start)
	return v
}
