// Package frame turns the RTP packets of a stream's ring back into frames
// (access units) for the consumers that need them: HLS, recording,
// transcoding. One Depacketizer per track reads the packets a cursor
// delivers, in order, and returns each complete frame with its timing.
//
// Frames are derived, not copied: NAL units that arrived whole in one
// packet (single NAL unit packets, aggregation packets) are slices of the
// packets' payloads; only fragmented NAL units and multi-packet VP8
// frames are reassembled into new memory. A depacketizer keeps such
// slices over several packets and hands them out in frames, so it reads
// from a cursor with hub.Cursor.OwnPackets (the ring's own memory is
// reused as the ring laps it). After a loss
// (a sequence gap: the reorder window gave up, or the cursor skipped) the
// damaged frame is dropped and video resumes at the next keyframe, so a
// consumer never gets a frame it cannot decode.
package frame

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// Bounds on what one frame may hold, against hostile or broken senders.
const (
	maxFrameBytes = 8 << 20
	maxFrameNALUs = 1024
)

// ErrUnsupported means there is no depacketizer for the codec.
var ErrUnsupported = errors.New("no depacketizer for codec")

// Depacketizer rebuilds the frames of one track from its packets, given in
// ring order.
type Depacketizer interface {
	// Push adds the next packet of the track. It returns a frame when one
	// is complete: when p ends it (marker bit) or, for senders that omit
	// the marker, when p begins the next one.
	Push(p *hub.Packet) (*media.Frame, bool)
}

// VideoInfoer is implemented by video depacketizers: what the parameter
// sets (or VP8 key frame headers) seen so far say about the picture.
type VideoInfoer interface {
	VideoInfo() (media.VideoInfo, bool)
}

// WallClock maps a track's RTP timestamps to the publisher's wall clock
// (hub.Stream implements it from RTCP sender reports).
type WallClock interface {
	WallClock(track int, rtp uint32) (time.Time, bool)
}

// New returns the depacketizer for a track of codec c. wc, if not nil,
// gives frames their wall-clock time. Parameter sets signalled in the fmtp
// line (sprop-parameter-sets, sprop-vps/sps/pps) seed the cache that is put
// before keyframes lacking them.
func New(c media.Codec, track int, wc WallClock) (Depacketizer, error) {
	b := base{track: track, clockRate: c.ClockRate, wc: wc}
	switch strings.ToUpper(c.Name()) {
	case "H264":
		d := &H264{nal{base: b}}
		d.seed(c.Fmtp)
		return d, nil
	case "H265", "HEVC":
		d := &H265{nal{base: b}}
		d.seed(c.Fmtp)
		return d, nil
	case "VP8":
		return &VP8{base: b}, nil
	case "VP9":
		return &VP9{base: b}, nil
	case "AV1":
		return &AV1{base: b}, nil
	case "OPUS":
		return &Opus{base: b}, nil
	}
	return nil, fmt.Errorf("%w %s", ErrUnsupported, c.Name())
}

// ForTrack returns the depacketizer for one of a stream's tracks, with the
// stream's sender reports as wall clock.
func ForTrack(s *hub.Stream, t hub.Track) (Depacketizer, error) {
	return New(t.Codec, t.Index, s)
}

// base is what every depacketizer keeps: sequence continuity and the
// unwrapped media clock.
type base struct {
	track     int
	clockRate uint32
	wc        WallClock

	seqStarted bool
	lastSeq    uint16

	tsStarted bool
	lastTS    uint32
	time      int64
}

// follows reports whether p directly follows the previous packet.
func (b *base) follows(p *hub.Packet) bool {
	ok := b.seqStarted && p.SequenceNumber == b.lastSeq+1
	b.seqStarted, b.lastSeq = true, p.SequenceNumber
	return ok
}

// newFrame returns a frame stamped with ts on the track's clocks.
func (b *base) newFrame(ts uint32, key bool) *media.Frame {
	if !b.tsStarted {
		b.tsStarted, b.lastTS = true, ts
	}
	b.time += int64(int32(ts - b.lastTS))
	b.lastTS = ts
	f := &media.Frame{Track: b.track, Keyframe: key, RTPTimestamp: ts, Time: b.time, ClockRate: b.clockRate}
	if b.wc != nil {
		if w, ok := b.wc.WallClock(b.track, ts); ok {
			f.Wall = w
		}
	}
	return f
}
