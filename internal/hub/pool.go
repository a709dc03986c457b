package hub

import (
	"sync"
	"sync/atomic"
)

// Ring memory is reused as the ring laps it, so that ingest makes no
// garbage: Write copies each packet into a chunk of the stream's pool (64
// Packet structs and one payload block), and a chunk goes back into use
// only when no reader can still see it.
//
// Readers take packets from the ring without locks, so the writer cannot
// know who holds one; each cursor tells it instead. A cursor publishes
// hold, the lowest ring position it may still read, before it reads a
// packet (hazard-pointer style: the store comes before its load of the
// slot, and the writer's check of the holds after its overwrite of the
// slots, so a reader that published too late finds the newer packets in
// the slots, never the chunk being reused). A chunk holding positions
// [a, end) is reused when end is at or below the stream's retention
// floor and every hold is at or past end.
//
// The floor (retainFrom) is what a reader still to come can ask for:
// the newest keyframe of each video track (the GOP cache, where a new
// cursor starts) and the last retainPackets packets (NACKs, a reader a
// little behind), whichever is older; the whole ring while a video
// track has no keyframe in it. So a stream's memory is about one
// keyframe interval, not the ring's size (ring_packets is the most kept
// for a long interval). The slots of a chunk reused while still in the
// ring are emptied before the holds are checked, so a reader that
// published too late finds them empty (it is behind the floor: it
// skips to the newest keyframe, as one the ring lapped).
//
// Otherwise (some hold below end) the chunk is left to the collector and
// a new one made: a stalled reader costs garbage, never sees its packets
// change.
//
// The contract for readers: a packet a Cursor returns, and its Payload,
// may be read until the cursor's next call (Next, TryNext, SeekKeyframe,
// Close). Readers that keep payload slices longer (depacketizers that
// assemble a frame over several packets, queues, muxers) open their
// cursor with OwnPackets, which copies what it returns into memory the
// collector manages. Stream.Packet, which answers NACKs from another
// goroutine, copies under the writer's lock.

const (
	chunkPackets  = 64
	minChunkBytes = 8 << 10
	maxChunkBytes = 128 << 10
	// holdStep: a cursor moving forward publishes its position at least
	// every holdStep packets. Far below any ring size (≥ 256), so that a
	// reader keeping up never keeps a chunk from reuse, and one atomic
	// store per holdStep packets instead of one per packet.
	holdStep = 32
	// retainPackets: the newest packets kept whatever the keyframes
	// (NACKs come from the last round trip or so).
	retainPackets = 512
)

// noHold is the hold of a cursor that reads nothing now.
const noHold = ^uint64(0)

// chunk is a run of packets written one after another and their
// payloads.
type chunk struct {
	pkts  []Packet
	data  []byte
	np    int    // packets handed out
	nd    int    // payload bytes handed out
	end   uint64 // sealed: its packets' positions are below end
	start uint64 // the position of its first packet
}

// pool is a stream's ring memory; only the writer (under wmu) uses it.
type pool struct {
	cur *chunk
	// sealed chunks, oldest first: a queue in a circular buffer.
	q      []*chunk
	qh, qn int
	// noReuse makes every chunk new (the memory before reuse): for the
	// benchmarks that compare both.
	noReuse bool

	made, reused, dropped uint64 // chunks
}

func (pl *pool) push(c *chunk) {
	if pl.qn == len(pl.q) {
		q := make([]*chunk, max(2*len(pl.q), 16))
		for i := range pl.qn {
			q[i] = pl.q[(pl.qh+i)%len(pl.q)]
		}
		pl.q, pl.qh = q, 0
	}
	pl.q[(pl.qh+pl.qn)%len(pl.q)] = c
	pl.qn++
}

func (pl *pool) front() *chunk { return pl.q[pl.qh] }

func (pl *pool) pop() {
	pl.q[pl.qh] = nil
	pl.qh = (pl.qh + 1) % len(pl.q)
	pl.qn--
}

// pooled returns the packet the writer stores next, with a Payload of n
// bytes (capacity n: an append copies). Called with wmu held.
func (s *Stream) pooled(n int) *Packet {
	c := s.pool.cur
	if c == nil || c.np == len(c.pkts) || (n <= len(c.data) && len(c.data)-c.nd < n) {
		c = s.nextChunk(n)
	}
	p := &c.pkts[c.np]
	c.np++
	if n > len(c.data)-c.nd {
		// Larger than a chunk's payload block (no RTP payload is): its
		// own memory.
		p.Payload = make([]byte, n)
		return p
	}
	p.Payload = c.data[c.nd : c.nd+n : c.nd+n]
	c.nd += n
	return p
}

// nextChunk seals the current chunk and takes the oldest sealed one if
// nobody can read it any more, else a new one. Called with wmu held.
func (s *Stream) nextChunk(n int) *chunk {
	pl := &s.pool
	if pl.cur != nil {
		pl.cur.end = s.ring.head.Load() // every packet of cur is written
		pl.push(pl.cur)
		pl.cur = nil
	}
	floor := s.retainFrom()
	var c *chunk
	for c == nil && pl.qn > 0 && pl.front().end <= floor {
		old := pl.front()
		pl.pop()
		if pl.noReuse || s.holds.below(old.end) {
			pl.dropped++ // a reader may still read it: the collector's
			continue
		}
		// Empty its slots still in the ring, then look at the holds
		// again: a reader that published since finds the slots empty.
		s.emptySlots(old)
		if s.holds.below(old.end) {
			pl.dropped++
			continue
		}
		c = old
		pl.reused++
	}
	if c == nil {
		c = &chunk{pkts: make([]Packet, chunkPackets), data: make([]byte, s.chunkBytes(n))}
		pl.made++
	}
	c.start = s.ring.head.Load() // the next write's position
	c.np, c.nd = 0, 0
	pl.cur = c
	return c
}

// retainFrom is the retention floor: positions below it are kept for no
// reader to come (see above). Called with wmu held.
func (s *Stream) retainFrom() uint64 {
	oldest := s.ring.oldest()
	head := s.ring.head.Load()
	floor := head - min(head, retainPackets)
	for _, t := range s.tracks {
		if t.isKey == nil {
			continue
		}
		k, ok := s.keyframeStart(t)
		if !ok {
			return oldest
		}
		floor = min(floor, k)
	}
	return max(floor, oldest)
}

// emptySlots clears the ring's slots that still point to c's packets.
// Called with wmu held.
func (s *Stream) emptySlots(c *chunk) {
	r := s.ring
	for pos := max(c.start, r.oldest()); pos < c.end; pos++ {
		r.slots[pos&r.mask].Store(nil)
	}
}

// chunkBytes sizes a new chunk's payload block for chunkPackets packets
// of the stream's mean payload so far (audio packets are small), at
// least one of n bytes.
func (s *Stream) chunkBytes(n int) int {
	mean := n
	if s.packetsIn > 0 {
		mean = max(mean, int(s.bytesIn/s.packetsIn))
	}
	b := chunkPackets * mean * 5 / 4
	b = (b + 1023) &^ 1023
	return min(max(b, minChunkBytes), maxChunkBytes)
}

// PoolStats says how the stream's ring memory was got: chunks made,
// reused, and left to the collector because a reader still held them
// (or reuse was off).
func (s *Stream) PoolStats() (made, reused, dropped uint64) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.pool.made, s.pool.reused, s.pool.dropped
}

// holdSet is the stream's cursors' holds, for the writer to check. The
// list is copied on change (Join, Close) and read without a lock.
type holdSet struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*atomic.Uint64]
}

func (hs *holdSet) add(h *atomic.Uint64) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	var l []*atomic.Uint64
	if old := hs.list.Load(); old != nil {
		l = append(l, *old...)
	}
	l = append(l, h)
	hs.list.Store(&l)
}

func (hs *holdSet) remove(h *atomic.Uint64) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	old := hs.list.Load()
	if old == nil {
		return
	}
	l := make([]*atomic.Uint64, 0, len(*old))
	for _, x := range *old {
		if x != h {
			l = append(l, x)
		}
	}
	hs.list.Store(&l)
}

// below reports whether some hold is below end: its cursor may still
// read a packet at a position below end.
func (hs *holdSet) below(end uint64) bool {
	l := hs.list.Load()
	if l == nil {
		return false
	}
	for _, h := range *l {
		if h.Load() < end {
			return true
		}
	}
	return false
}

// packetCopy carves OwnPackets' copies from larger blocks: one
// allocation per copyPackets packets and per copyBytes of payload, not
// two per packet. A block lives as long as any copy in it.
type packetCopy struct {
	pkts []Packet
	data []byte
}

const (
	copyPackets = 64
	copyBytes   = 64 << 10
)

// packet returns a copy of p, its payload full (an append copies
// instead of writing into the next one).
func (pc *packetCopy) packet(p *Packet) *Packet {
	if len(pc.pkts) == 0 {
		pc.pkts = make([]Packet, copyPackets)
	}
	q := &pc.pkts[0]
	pc.pkts = pc.pkts[1:]
	*q = *p
	n := len(p.Payload)
	if len(pc.data) < n {
		pc.data = make([]byte, max(copyBytes, n))
	}
	q.Payload = pc.data[:n:n]
	pc.data = pc.data[n:]
	copy(q.Payload, p.Payload)
	return q
}
