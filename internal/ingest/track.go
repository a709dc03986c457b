package ingest

import (
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"

	"github.com/sluice-media/sluice/internal/codec"
	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/reorder"
)

// Sink is what a track writes to: the writer side of a hub stream.
type Sink interface {
	// Write takes a copy of p (hub.Writer does): the track reuses p
	// once Write returns.
	Write(p *hub.Packet)
	// RequestTrackKeyframe asks the stream's publisher for a keyframe on
	// the track, rate-limited by the hub (which calls back into the
	// source's Track.RequestKeyframe).
	RequestTrackKeyframe(track int) bool
	SetVideoInfo(track int, info media.VideoInfo)
	SetSenderReport(track int, ntp uint64, rtp uint32)
}

// TrackConfig is what one inbound track is set up with.
type TrackConfig struct {
	// Index is the track's index in the hub stream.
	Index int
	Codec media.Codec
	// SSRC is the sender's media SSRC, the target of NACKs and keyframe
	// requests and the source of the sender reports kept; 0 when the
	// source does not say (an RTSP publisher's first packet sets it).
	SSRC uint32
	// NACK: the sender retransmits what a generic NACK names (RFC 4585
	// §6.2.1). FIR: it wants keyframe requests as FIR (RFC 5104 §4.3.1)
	// rather than PLI (it offered "ccm fir" but not "nack pli").
	NACK, FIR bool
	// RTCP sends feedback to the sender; nil when there is no way back
	// (keyframe requests and NACKs are then dropped).
	RTCP func(pkts []rtcp.Packet) error
	// SenderSSRC is the SSRC sluice's feedback names as its sender; 0
	// picks a random one.
	SenderSSRC uint32
	// Late, Duplicate and Unrecovered are also counted by the source's
	// metrics when set (packets the reorder window drops as too late or
	// seen before; sequence numbers it gives up on).
	Late, Duplicate, Unrecovered Counter
}

// Stats are a track's counters since it started.
type Stats struct {
	Late, Duplicates, Unrecovered uint64
}

// Track is one inbound track's path from the network to the ring: the
// reorder window, NACKs for its gaps, keyframe requests after
// unrecoverable loss and on a timer, padding taken out of the sequence,
// sender reports and the parameter sets' video info. Packets enter by
// one of ReadFrom (a pull loop over a pion track), WriteRTP (push-mode
// sources) or, in tests, push with an explicit clock; a track uses one.
type Track struct {
	cfg       TrackConfig
	out       Sink
	win       *reorder.Window[*hub.Packet]
	isKey     codec.KeyframeFunc // nil for audio
	sniff     *frame.InfoSniffer // nil for audio
	nackRetry time.Duration
	pliEvery  time.Duration
	spares    spares // packets for the window, reused once written

	// Owned by whoever pushes packets (ReadFrom's goroutine, or WriteRTP's
	// callers under pushMu).
	now      time.Time // of the packet or timer being handled
	lastNACK time.Time
	lastKey  time.Time // newest keyframe released, or periodic request
	missing  []uint16
	removed  uint16 // padding packets taken out of the sequence so far

	ssrc   atomic.Uint32 // the sender's SSRC, learnt from the packets if not given
	firSeq atomic.Uint32
	stats  struct{ late, dup, unrecovered atomic.Uint64 }

	pushed pushState // WriteRTP's lock and timer (push.go)
}

// NewTrack returns the track's ingest, writing into out.
func NewTrack(o Options, cfg TrackConfig, out Sink) *Track {
	if cfg.SenderSSRC == 0 {
		cfg.SenderSSRC = rand.Uint32()
	}
	t := &Track{cfg: cfg, out: out, nackRetry: o.nackRetry()}
	t.ssrc.Store(cfg.SSRC)
	t.win = reorder.New(o.Reorder, t.release)
	if cfg.Codec.Kind() == media.KindVideo {
		t.isKey = codec.KeyframeDetector(cfg.Codec)
		t.sniff = frame.NewInfoSniffer(cfg.Codec)
		t.pliEvery = o.PLIInterval
	}
	return t
}

// Index is the track's index in the hub stream.
func (t *Track) Index() int { return t.cfg.Index }

// Video reports whether the track carries video.
func (t *Track) Video() bool { return t.isKey != nil }

// Stats returns the track's counters.
func (t *Track) Stats() Stats {
	return Stats{Late: t.stats.late.Load(), Duplicates: t.stats.dup.Load(), Unrecovered: t.stats.unrecovered.Load()}
}

// push takes one packet with sequence number seq that arrived at now; p is
// nil for a packet with no payload (padding), which only fills its place
// in the sequence.
func (t *Track) push(seq uint16, p *hub.Packet, now time.Time) {
	t.now = now
	if t.lastKey.IsZero() {
		t.lastKey = now
	}
	switch t.win.Push(seq, p, now) {
	case reorder.Held:
		t.sendNACKs(0) // the gaps this packet revealed
	case reorder.Late:
		t.stats.late.Add(1)
		inc(t.cfg.Late)
		t.spare(p) // dropped: the window did not take it
	case reorder.Duplicate:
		t.stats.dup.Add(1)
		inc(t.cfg.Duplicate)
		t.spare(p)
	}
	t.win.Expire(now)
}

// tick handles time passing without a packet: gaps past their deadline are
// given up, the others NACKed again when due.
func (t *Track) tick(now time.Time) {
	t.now = now
	t.win.Expire(now)
	if t.win.Held() > 0 && !now.Before(t.lastNACK.Add(t.nackRetry)) {
		t.sendNACKs(t.nackRetry)
	}
}

// wake is when tick must run if no packet comes first; ok is false when
// nothing is waiting.
func (t *Track) wake() (time.Time, bool) {
	dl, ok := t.win.Deadline()
	if !ok {
		return time.Time{}, false
	}
	if t.nacks() {
		if r := t.lastNACK.Add(t.nackRetry); r.Before(dl) {
			dl = r
		}
	}
	return dl, true
}

func (t *Track) nacks() bool { return t.cfg.NACK && t.cfg.RTCP != nil }

func (t *Track) sendNACKs(retry time.Duration) {
	if !t.nacks() {
		return
	}
	t.missing = t.win.Missing(t.missing[:0], maxNACKSeqs, t.now, retry)
	if len(t.missing) > 0 {
		t.lastNACK = t.now
		_ = t.cfg.RTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
			SenderSSRC: t.cfg.SenderSSRC, MediaSSRC: t.ssrc.Load(), Nacks: rtcp.NackPairsFromSequenceNumbers(t.missing),
		}})
	}
}

// release is the reorder window's output: packets in sequence order.
func (t *Track) release(p *hub.Packet, lost int) {
	if lost > 0 {
		t.stats.unrecovered.Add(uint64(lost))
		if t.cfg.Unrecovered != nil {
			for range lost {
				t.cfg.Unrecovered.Inc()
			}
		}
		if t.isKey != nil {
			// Unrecoverable loss: the picture is damaged until the next
			// keyframe. The stream rate-limits the request.
			t.out.RequestTrackKeyframe(t.cfg.Index)
			t.lastKey = t.now
		}
	}
	if p == nil {
		// Padding (bandwidth probes): not forwarded, and taken out of the
		// sequence so viewers see no gap to NACK in vain.
		t.removed++
		return
	}
	p.SequenceNumber -= t.removed
	if t.isKey != nil {
		if t.isKey(p.Payload) {
			t.lastKey = t.now
		} else if t.pliEvery > 0 && t.now.Sub(t.lastKey) >= t.pliEvery {
			t.out.RequestTrackKeyframe(t.cfg.Index)
			t.lastKey = t.now
		}
		if t.sniff != nil {
			if info, ok := t.sniff.Sniff(p.Payload); ok {
				t.out.SetVideoInfo(t.cfg.Index, info)
			}
		}
	}
	t.out.Write(p)
	t.spares.put(p) // the stream took a copy
}

// spare takes back a packet the window dropped (nil for padding).
func (t *Track) spare(p *hub.Packet) {
	if p != nil {
		t.spares.put(p)
	}
}

// RequestKeyframe asks the sender for a keyframe on this track: a PLI, or
// a FIR where that is what the sender offered, naming the track's SSRC.
// It is not rate-limited here: the hub limits the calls it passes on.
// Safe for concurrent use.
func (t *Track) RequestKeyframe() {
	if t.isKey == nil || t.cfg.RTCP == nil {
		return
	}
	ssrc := t.ssrc.Load()
	var p rtcp.Packet = &rtcp.PictureLossIndication{SenderSSRC: t.cfg.SenderSSRC, MediaSSRC: ssrc}
	if t.cfg.FIR {
		// RFC 5104 §4.3.1: the FCI names the SSRC and a sequence number
		// that changes with each new request; the header's media SSRC
		// is 0.
		seq := uint8(t.firSeq.Add(1))
		p = &rtcp.FullIntraRequest{SenderSSRC: t.cfg.SenderSSRC, FIR: []rtcp.FIREntry{{SSRC: ssrc, SequenceNumber: seq}}}
	}
	_ = t.cfg.RTCP([]rtcp.Packet{p})
}

// SenderReport keeps an RTCP sender report of the track's SSRC in the
// stream; it maps the RTP clock to the sender's wall clock (RFC 3550
// §6.4.1) for A/V sync downstream. Reports of other SSRCs are ignored.
func (t *Track) SenderReport(sr *rtcp.SenderReport) {
	if ssrc := t.ssrc.Load(); ssrc != 0 && sr.SSRC != ssrc {
		return
	}
	t.out.SetSenderReport(t.cfg.Index, sr.NTPTime, sr.RTPTime)
}

func inc(c Counter) {
	if c != nil {
		c.Inc()
	}
}
