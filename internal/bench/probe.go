package bench

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// sendLog holds the time at which each access unit was handed to the
// publisher's RTP sender, by index, in a ring. Times are offsets from a
// shared monotonic base, so the publisher and the viewers, all in this
// process, read one clock.
type sendLog struct {
	base time.Time
	idx  []atomic.Uint64 // index+1 held by the slot; 0 = empty
	at   []atomic.Int64  // offset from base, ns
}

func newSendLog(slots int) *sendLog {
	return &sendLog{base: time.Now(), idx: make([]atomic.Uint64, slots), at: make([]atomic.Int64, slots)}
}

func (l *sendLog) now() int64 { return int64(time.Since(l.base)) }

func (l *sendLog) put(n uint64, at int64) {
	s := n % uint64(len(l.idx))
	l.at[s].Store(at)
	l.idx[s].Store(n + 1)
}

func (l *sendLog) get(n uint64) (int64, bool) {
	s := n % uint64(len(l.idx))
	if l.idx[s].Load() != n+1 {
		return 0, false
	}
	return l.at[s].Load(), true
}

// seqCounter follows one track's RTP sequence numbers, extended past the
// 16-bit wrap, and counts packets received, so that loss over a window is
// (highest - highest before) - (received - received before), as RTCP
// receiver reports compute it (RFC 3550 §6.4.1). Written by the track's
// read goroutine only; read by anyone.
type seqCounter struct {
	started  bool
	highest  atomic.Int64
	received atomic.Uint64
}

func (c *seqCounter) push(seq uint16) {
	c.received.Add(1)
	if !c.started {
		c.started = true
		c.highest.Store(int64(seq))
		return
	}
	h := c.highest.Load()
	if d := int64(int16(seq - uint16(h))); d > 0 {
		c.highest.Store(h + d)
	}
}

// keyframeWatch finds the first complete keyframe access unit: packets of
// one RTP timestamp, contiguous in sequence from a NAL unit start to the
// marker bit, holding an IDR slice, after an SPS has been seen. It is the
// moment a decoder could show the first picture.
type keyframeWatch struct {
	ts      uint32
	lastSeq uint16
	inAU    bool // the current access unit began cleanly and has no gap
	idr     bool
	sps     bool
	prevEnd bool // the previous packet carried the marker
	begun   bool
}

// push reports whether p completes the first decodable keyframe.
func (k *keyframeWatch) push(p *rtp.Packet) bool {
	first := !k.begun
	newAU := first || k.prevEnd || p.Timestamp != k.ts
	contiguous := !first && p.SequenceNumber == k.lastSeq+1
	k.begun = true
	k.lastSeq, k.prevEnd = p.SequenceNumber, p.Marker
	if newAU {
		// After a gap the access unit's first packets may be missing.
		k.ts = p.Timestamp
		k.inAU = startsNAL(p.Payload) && (first || contiguous)
		k.idr = false
	} else if !contiguous {
		k.inAU = false
	}
	if !k.inAU {
		return false
	}
	nalTypesIn(p.Payload, func(t byte) {
		switch t {
		case 5:
			k.idr = true
		case 7:
			k.sps = true
		}
	})
	return p.Marker && k.idr && k.sps
}

// startsNAL reports whether an H264 RTP payload begins a NAL unit (anything
// but an FU-A continuation).
func startsNAL(payload []byte) bool {
	if len(payload) == 0 {
		return false
	}
	if payload[0]&0x1f == 28 {
		return len(payload) > 1 && payload[1]&0x80 != 0
	}
	return true
}

// nalTypesIn calls f with the type of each NAL unit that starts in payload.
func nalTypesIn(payload []byte, f func(byte)) {
	if len(payload) == 0 {
		return
	}
	switch t := payload[0] & 0x1f; t {
	case 24:
		for rest := payload[1:]; len(rest) >= 3; {
			n := int(binary.BigEndian.Uint16(rest))
			if n == 0 || 2+n > len(rest) {
				return
			}
			f(rest[2] & 0x1f)
			rest = rest[2+n:]
		}
	case 28:
		if len(payload) > 1 && payload[1]&0x80 != 0 {
			f(payload[1] & 0x1f)
		}
	default:
		f(t)
	}
}

// probe is one viewer's measurements, fed from its read loops by OnRTP.
type probe struct {
	log       *sendLog
	measuring *atomic.Bool

	postAt    atomic.Int64 // offset of the last WHEP POST (sendLog clock)
	firstKey  atomic.Int64 // offset when the first keyframe completed; 0 = not yet
	packets   atomic.Uint64
	bytes     atomic.Uint64 // RTP header + payload
	video     seqCounter
	audio     seqCounter
	kf        keyframeWatch
	stampSeen atomic.Uint64

	mu      sync.Mutex
	latency []time.Duration // samples while measuring
}

// maxLatencySamples bounds each viewer's latency samples.
const maxLatencySamples = 100_000

func (p *probe) onRTP(kind webrtc.RTPCodecType, pkt *rtp.Packet) {
	p.packets.Add(1)
	p.bytes.Add(uint64(pkt.MarshalSize()))
	if kind == webrtc.RTPCodecTypeAudio {
		p.audio.push(pkt.SequenceNumber)
		return
	}
	p.video.push(pkt.SequenceNumber)
	if p.firstKey.Load() == 0 && p.kf.push(pkt) {
		p.firstKey.Store(max(p.log.now(), 1))
	}
	n, ok := findStamp(pkt.Payload)
	if !ok {
		return
	}
	p.stampSeen.Add(1)
	if !p.measuring.Load() {
		return
	}
	now := p.log.now()
	sent, ok := p.log.get(n)
	if !ok {
		return
	}
	p.mu.Lock()
	if len(p.latency) < maxLatencySamples {
		p.latency = append(p.latency, time.Duration(now-sent))
	}
	p.mu.Unlock()
}

// counters is a snapshot of a probe's counters.
type counters struct {
	packets, bytes   uint64
	videoHigh        int64
	videoRecv        uint64
	audioHigh        int64
	audioRecv        uint64
	videoOn, audioOn bool
}

func (p *probe) snapshot() counters {
	return counters{
		packets:   p.packets.Load(),
		bytes:     p.bytes.Load(),
		videoHigh: p.video.highest.Load(),
		videoRecv: p.video.received.Load(),
		audioHigh: p.audio.highest.Load(),
		audioRecv: p.audio.received.Load(),
		videoOn:   p.video.received.Load() > 0,
		audioOn:   p.audio.received.Load() > 0,
	}
}

// lost returns the packets expected and lost between two snapshots, for
// tracks that were flowing at the first one.
func lost(a, b counters) (expected, lostPkts int64) {
	if a.videoOn {
		e := b.videoHigh - a.videoHigh
		expected += e
		lostPkts += e - int64(b.videoRecv-a.videoRecv)
	}
	if a.audioOn {
		e := b.audioHigh - a.audioHigh
		expected += e
		lostPkts += e - int64(b.audioRecv-a.audioRecv)
	}
	return expected, lostPkts
}
