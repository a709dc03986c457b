package whip

import (
	"time"

	"github.com/sluice-media/sluice/internal/codec"
	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/reorder"
)

// NACK retry bounds: a gap is NACKed when it appears and again every
// quarter of the reorder window's delay, within these bounds, until it is
// filled or given up.
const (
	minNACKRetry = 10 * time.Millisecond
	maxNACKRetry = 100 * time.Millisecond
	// maxNACKSeqs bounds one NACK (at most this many 4-byte pairs, so it
	// fits a packet); the rest go out at the next retry.
	maxNACKSeqs = 256
)

// sink is what an ingest writes to: the hub stream.
type sink interface {
	Write(p *hub.Packet)
	RequestTrackKeyframe(track int) bool
	SetVideoInfo(track int, info media.VideoInfo)
}

// counter is a metric the ingest increments (prometheus.Counter).
type counter interface{ Inc() }

// ingestConfig is what one track's ingest is set up with.
type ingestConfig struct {
	track   int
	codec   media.Codec
	reorder reorder.Config
	// nack sends a generic NACK for the sequence numbers; nil when the
	// track did not negotiate NACK.
	nack func(seqs []uint16)
	// pliInterval asks for a keyframe when none came for this long
	// (video only); 0 disables it.
	pliInterval time.Duration
	late, dup   counter // may be nil
}

// ingest is one track's path from the network to the ring: the reorder
// window, NACKs for its gaps, keyframe requests after unrecoverable loss
// and on a timer, and the parameter sets' video info. It belongs to the
// track's read goroutine; every method takes the time, so that tests drive
// it with a fake clock.
type ingest struct {
	cfg       ingestConfig
	out       sink
	win       *reorder.Window[*hub.Packet]
	isKey     codec.KeyframeFunc // nil for audio
	sniff     *frame.InfoSniffer // nil for audio
	nackRetry time.Duration

	now      time.Time // of the packet or timer being handled
	lastNACK time.Time
	lastKey  time.Time // newest keyframe released, or periodic request
	missing  []uint16
	removed  uint16 // padding packets taken out of the sequence so far
}

func newIngest(cfg ingestConfig, out sink) *ingest {
	in := &ingest{cfg: cfg, out: out}
	in.win = reorder.New(cfg.reorder, in.release)
	if cfg.codec.Kind() == media.KindVideo {
		in.isKey = codec.KeyframeDetector(cfg.codec)
		in.sniff = frame.NewInfoSniffer(cfg.codec)
	}
	delay := cfg.reorder.MaxDelay
	if delay <= 0 {
		delay = reorder.DefaultMaxDelay
	}
	in.nackRetry = min(max(delay/4, minNACKRetry), maxNACKRetry)
	return in
}

// push takes one packet with sequence number seq that arrived at now; p is
// nil for a packet with no payload (padding), which only fills its place
// in the sequence.
func (in *ingest) push(seq uint16, p *hub.Packet, now time.Time) {
	in.now = now
	if in.lastKey.IsZero() {
		in.lastKey = now
	}
	switch in.win.Push(seq, p, now) {
	case reorder.Held:
		in.sendNACKs(0) // the gaps this packet revealed
	case reorder.Late:
		inc(in.cfg.late)
	case reorder.Duplicate:
		inc(in.cfg.dup)
	}
	in.win.Expire(now)
}

// tick handles time passing without a packet: gaps past their deadline are
// given up, the others NACKed again when due.
func (in *ingest) tick(now time.Time) {
	in.now = now
	in.win.Expire(now)
	if in.win.Held() > 0 && !now.Before(in.lastNACK.Add(in.nackRetry)) {
		in.sendNACKs(in.nackRetry)
	}
}

// wake is when tick must run if no packet comes first; ok is false when
// nothing is waiting.
func (in *ingest) wake() (time.Time, bool) {
	dl, ok := in.win.Deadline()
	if !ok {
		return time.Time{}, false
	}
	if in.cfg.nack != nil {
		if r := in.lastNACK.Add(in.nackRetry); r.Before(dl) {
			dl = r
		}
	}
	return dl, true
}

func (in *ingest) sendNACKs(retry time.Duration) {
	if in.cfg.nack == nil {
		return
	}
	in.missing = in.win.Missing(in.missing[:0], maxNACKSeqs, in.now, retry)
	if len(in.missing) > 0 {
		in.lastNACK = in.now
		in.cfg.nack(in.missing)
	}
}

// release is the reorder window's output: packets in sequence order.
func (in *ingest) release(p *hub.Packet, lost int) {
	if lost > 0 && in.isKey != nil {
		// Unrecoverable loss: the picture is damaged until the next
		// keyframe. The stream rate-limits the request.
		in.out.RequestTrackKeyframe(in.cfg.track)
		in.lastKey = in.now
	}
	if p == nil {
		// Padding (bandwidth probes): not forwarded, and taken out of the
		// sequence so viewers see no gap to NACK in vain.
		in.removed++
		return
	}
	p.SequenceNumber -= in.removed
	if in.isKey != nil {
		if in.isKey(p.Payload) {
			in.lastKey = in.now
		} else if in.cfg.pliInterval > 0 && in.now.Sub(in.lastKey) >= in.cfg.pliInterval {
			in.out.RequestTrackKeyframe(in.cfg.track)
			in.lastKey = in.now
		}
		if in.sniff != nil {
			if info, ok := in.sniff.Sniff(p.Payload); ok {
				in.out.SetVideoInfo(in.cfg.track, info)
			}
		}
	}
	in.out.Write(p)
}

func inc(c counter) {
	if c != nil {
		c.Inc()
	}
}
