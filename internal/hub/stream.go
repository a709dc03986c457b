package hub

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/codec"
	"github.com/sluice-media/sluice/internal/media"
)

// noPos marks "no keyframe seen yet".
const noPos = ^uint64(0)

// Track is one media track of a stream as its publisher negotiated it.
type Track struct {
	Index int
	Codec media.Codec
	// RID and Group are set for a simulcast layer (see layer.go): its RTP
	// stream id and the index of its group's leader. Group is Index for
	// the leader and for a track without simulcast.
	RID   string
	Group int
	// Derived: no publisher sends the track; a Deriver writes it from
	// track Source in another codec (derive.go).
	Derived bool
	Source  int
	// DeriveErr says why no track could be derived from this one (the
	// transcoding libraries missing), or "".
	DeriveErr string
}

// trackState is the writer's bookkeeping for one track; keyStart is read by
// cursors.
type trackState struct {
	Track
	isKey codec.KeyframeFunc // nil for audio
	video bool

	// Writer-only: the access unit being written.
	started bool
	auTS    uint32
	auStart uint64
	auKey   bool

	keyStart atomic.Uint64 // ring position of the newest keyframe access unit

	// seqPos maps a sequence number (masked) to its packet's ring
	// position plus one, so that viewer NACKs are answered from the ring
	// (see Stream.Packet). One atomic store per packet.
	seqPos []atomic.Uint64
	sr     atomic.Pointer[media.SenderReport] // newest RTCP sender report
	info   atomic.Pointer[media.VideoInfo]    // from the parameter sets

	// Writer-only: continuity across publishers (see reconnect.go).
	rebase   bool // the next packet comes from a new publisher
	seqOff   uint16
	tsOff    atomic.Uint32 // also read by SetSenderReport
	lastSeq  uint16
	lastTS   uint32
	lastWall time.Time

	// Simulcast (layer.go); group is nil for a track without simulcast.
	rid       string
	group     *layerGroup
	aligned   bool         // writer-only: the layer's timeline offset is set
	rateStart int64        // writer-only: start of the bit rate window (unix nanos)
	rateBytes uint64       // writer-only: payload bytes in the window
	bitrate   atomic.Int64 // bits per second over the last window
	rateAt    atomic.Int64 // when bitrate was measured (unix nanos)
	lastPLI   atomic.Int64 // unix nanos of the last keyframe request for this track alone
}

// Stream is one published stream: its tracks and its packet ring.
type Stream struct {
	hub  *Hub
	name string
	ring *ring

	// wmu serialises writers (one goroutine per publisher track) and guards
	// the track list; readers take a snapshot once ready.
	wmu          sync.Mutex
	pub          Publisher // nil while detached
	detached     bool
	graceTimer   *time.Timer
	gen          uint32 // publishers so far, minus one
	claimed      []bool // tracks a reattached publisher has added again
	tracks       []*trackState
	snapshot     atomic.Pointer[[]*trackState] // tracks, for lock-free readers
	expectTracks int
	ready        chan struct{}
	readyOnce    sync.Once

	done    chan struct{}
	endErr  error // why done was closed: ErrEnded or ErrCodecChanged
	endOnce sync.Once

	viewers atomic.Int32
	lastPLI atomic.Int64 // unix nanos of the last keyframe request
	// frameOpen: the last packet written is a video packet whose frame
	// goes on (no marker), see FrameOpen.
	frameOpen atomic.Bool
	started   time.Time

	// Counted by Write under wmu, which it holds anyway: cheaper than
	// atomics. Read by the metrics at scrape time (Ingested).
	packetsIn, bytesIn uint64

	pool  pool    // ring memory, reused as the ring laps it (pool.go); under wmu
	holds holdSet // the cursors' holds on it
}

func newStream(h *Hub, name string, pub Publisher, expectTracks int) *Stream {
	return &Stream{
		hub:          h,
		name:         name,
		pub:          pub,
		ring:         newRing(h.cfg.RingPackets),
		expectTracks: expectTracks,
		ready:        make(chan struct{}),
		done:         make(chan struct{}),
		started:      time.Now(),
	}
}

// Name is the stream's name.
func (s *Stream) Name() string { return s.name }

// addTrack declares a track the publisher sends and returns its index for
// Write. The stream becomes ready when all expected tracks are added. A
// publisher that took over a detached stream gets the index of the track
// it continues.
func (s *Stream) addTrack(c media.Codec) int {
	s.wmu.Lock()
	if s.gen > 0 {
		if i := s.matchTrack(c, s.claimed); i >= 0 {
			s.claimed[i] = true
			s.wmu.Unlock()
			return i
		}
		// The publisher sends another codec than it negotiated first: a
		// new track that the current viewers do not take.
	}
	t := s.newTrackLocked(c)
	i := s.appendTrackLocked(t)
	derived := s.addDerivedLocked(t)
	s.checkReadyLocked()
	s.wmu.Unlock()
	s.derivedAdded(derived)
	return i
}

// newTrackLocked makes the state of the next track. Called with wmu held.
func (s *Stream) newTrackLocked(c media.Codec) *trackState {
	i := len(s.tracks)
	t := &trackState{
		Track:  Track{Index: i, Codec: c, Group: i},
		isKey:  codec.KeyframeDetector(c),
		video:  c.Kind() == media.KindVideo,
		seqPos: make([]atomic.Uint64, seqIndexSize(s.hub.cfg.RingPackets)),
	}
	t.keyStart.Store(noPos)
	return t
}

// appendTrackLocked adds a track and publishes the new track list. Called
// with wmu held; the caller then calls checkReadyLocked, once the tracks
// derived from this one are added too.
func (s *Stream) appendTrackLocked(t *trackState) int {
	s.tracks = append(s.tracks, t)
	snap := slices.Clone(s.tracks)
	s.snapshot.Store(&snap)
	return t.Index
}

// checkReadyLocked makes the stream ready once every track its publisher
// negotiated is added (derived tracks not counted). Called with wmu held.
func (s *Stream) checkReadyLocked() {
	n := 0
	for _, t := range s.tracks {
		if !t.Derived {
			n++
		}
	}
	if n >= s.expectTracks {
		s.readyOnce.Do(func() { close(s.ready) })
	}
}

// Ready is closed once every negotiated track has been added.
func (s *Stream) Ready() <-chan struct{} { return s.ready }

// Done is closed when the publisher has left.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Tracks returns the tracks added so far; of a simulcast track only its
// group's leader (see Layers).
func (s *Stream) Tracks() []Track {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	out := make([]Track, 0, len(s.tracks))
	for _, t := range s.tracks {
		if t.Group == t.Index {
			out = append(out, t.Track)
		}
	}
	return out
}

// TrackCount is the number of tracks, simulcast layers each counted:
// one more than the highest Packet.Track.
func (s *Stream) TrackCount() int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return len(s.tracks)
}

// Viewers is the number of cursors open on the stream.
func (s *Stream) Viewers() int { return int(s.viewers.Load()) }

// write appends a copy of src, a packet of track src.Track, to the ring:
// the copy lives in the stream's pool (pool.go), and the caller may reuse
// src and its payload once write returns. Write never waits for a viewer.
func (s *Stream) write(src *Packet) {
	s.wmu.Lock()
	if src.Track < 0 || src.Track >= len(s.tracks) {
		s.wmu.Unlock()
		return
	}
	t := s.tracks[src.Track]
	p := s.pooled(len(src.Payload))
	payload := p.Payload
	*p = *src
	p.Payload = payload
	copy(payload, src.Payload)
	pos := s.ring.head.Load()
	now := s.hub.now()
	p.Arrived = now.UnixNano()
	switch {
	case t.group != nil:
		t.alignLayer(p, now)
		t.countRate(len(p.Payload), p.Arrived)
	case s.gen > 0 || s.hub.cfg.ReconnectGrace > 0:
		t.rebaseOnto(p, now)
	}
	p.Gen = s.gen
	if t.isKey != nil {
		// A keyframe access unit starts at its first packet (often SPS/PPS),
		// which precedes the packet that shows the IDR slice.
		if !t.started || p.Timestamp != t.auTS {
			t.started, t.auTS, t.auStart, t.auKey = true, p.Timestamp, pos, false
		}
		if !t.auKey && t.isKey(p.Payload) {
			t.auKey = true
			t.keyStart.Store(t.auStart)
		}
	}
	t.seqPos[int(p.SequenceNumber)&(len(t.seqPos)-1)].Store(pos + 1)
	open := t.video && !p.Marker
	s.frameOpen.Store(open)
	s.ring.push(p, open)
	s.packetsIn++
	s.bytesIn += uint64(len(p.Payload))
	s.wmu.Unlock()
}

// FrameOpen reports whether the last packet written is a video packet
// whose frame goes on: its marker bit is clear. A reader of the whole
// stream can wait for the frame's last packet, which usually follows
// within the publisher's burst, and forward the frame at once.
func (s *Stream) FrameOpen() bool { return s.frameOpen.Load() }

// Ingested is how many packets, and payload bytes, Write has taken.
func (s *Stream) Ingested() (packets, bytes uint64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.packetsIn, s.bytesIn
}

// Publisher is the stream's publisher now, nil while it is detached (the
// reconnect grace). Operators' views ask it, by type assertion, what it
// can say about itself (its protocol, its remote address).
func (s *Stream) Publisher() Publisher {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.pub
}

// RequestKeyframe asks the publisher for a keyframe, at most once per
// PLIMinInterval; it reports whether the request was passed on.
func (s *Stream) RequestKeyframe() bool {
	if !limit(&s.lastPLI, s.hub.now().UnixNano(), s.hub.cfg.PLIMinInterval) {
		return false
	}
	s.wmu.Lock()
	pub := s.pub
	s.wmu.Unlock()
	if pub == nil {
		return false // detached: the next publisher starts with a keyframe
	}
	pub.RequestKeyframe()
	return true
}

func (s *Stream) end(reason error) {
	s.endOnce.Do(func() {
		s.wmu.Lock()
		if s.graceTimer != nil {
			s.graceTimer.Stop()
		}
		s.detached = false
		s.wmu.Unlock()
		s.endErr = reason
		s.hub.remove(s)
		close(s.done)
	})
}

// keyframeStart returns the ring position where the newest cached keyframe of
// track i begins, or false if there is none still in the ring.
func (s *Stream) keyframeStart(t *trackState) (uint64, bool) {
	k := t.keyStart.Load()
	if k == noPos || k < s.ring.oldest() {
		return 0, false
	}
	return k, true
}
