package hub

import (
	"cmp"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// Simulcast: a publisher may send one video source as up to three RTP
// streams (layers) of different resolution and bit rate, told apart by the
// RID header extension (RFC 8851, RFC 8853). Each layer is a track of its
// own in the stream: its own keyframe index (GOP cache), NACK index,
// sender reports and keyframe requests. The layers of one source form a
// group, named by the first layer that arrived (the leader): Tracks lists
// only the leader, Layers lists the group.
//
// The layers share the stream's ring rather than one ring each: a cursor
// reads one position in one ring, packets of all layers keep their arrival
// order (so a switch lands between two frames of the same instant), and a
// viewer skips another layer's packet with one pointer load and compare.
//
// Layers arrive with unrelated random timestamps. Write maps each layer's
// timestamps onto the group's timeline at its first packet (the group's
// newest timestamp plus the wall-clock time since), so that a viewer that
// switches layers sees one clock and only its sequence numbers need a new
// offset.

// layerGroup is the writer's state of one simulcast source.
type layerGroup struct {
	mid    string // the media section's mid
	leader int    // track index of the first layer

	// Writer-only (under wmu): the group's timeline.
	clockSet bool
	lastTS   uint32
	lastWall time.Time
}

// Layer is one simulcast layer of a video track.
type Layer struct {
	Track int    // the layer's track index (Packet.Track)
	RID   string // its RTP stream id
	// Bitrate is the layer's payload bit rate over about the last half
	// second; 0 while the layer sends nothing.
	Bitrate int64
}

// Bit rate measurement of a layer: a window of rateWindow, forgotten when
// nothing came for rateStale.
const (
	rateWindow = 500 * time.Millisecond
	rateStale  = 2 * time.Second
)

// addLayer declares one simulcast layer (rid) of the media section mid and
// returns its track index for Write; layers of the same mid form one
// group. A publisher that took over a detached stream gets the track of
// the layer with the same codec and RID, when there is one.
func (s *Stream) addLayer(c media.Codec, mid, rid string) int {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.gen > 0 {
		for i, t := range s.tracks {
			if !s.claimed[i] && t.rid == rid && media.Compatible(c, t.Codec) && media.Compatible(t.Codec, c) {
				s.claimed[i] = true
				return i
			}
		}
	}
	var g *layerGroup
	for _, t := range s.tracks {
		if t.group != nil && t.group.mid == mid {
			g = t.group
		}
	}
	if g == nil {
		g = &layerGroup{mid: mid, leader: len(s.tracks)}
	}
	t := s.newTrackLocked(c)
	t.rid, t.group = rid, g
	t.RID, t.Group = rid, g.leader
	i := s.appendTrackLocked(t)
	s.checkReadyLocked()
	return i
}

// Layers returns the simulcast layers of the track whose index Tracks
// gives (the group's leader), from the lowest bit rate to the highest;
// layers that send nothing come first, with Bitrate 0. A track without
// simulcast has no layers.
func (s *Stream) Layers(track int) []Layer {
	snap := s.snapshot.Load()
	if snap == nil {
		return nil
	}
	now := s.hub.now().UnixNano()
	var out []Layer
	for _, t := range *snap {
		if t.group == nil || t.group.leader != track {
			continue
		}
		out = append(out, Layer{Track: t.Index, RID: t.rid, Bitrate: t.rate(now)})
	}
	slices.SortStableFunc(out, func(a, b Layer) int { return cmp.Compare(a.Bitrate, b.Bitrate) })
	return out
}

// rate is the track's bit rate at unix time now (nanoseconds).
func (t *trackState) rate(now int64) int64 {
	if now-t.rateAt.Load() > int64(rateStale) {
		return 0
	}
	return t.bitrate.Load()
}

// countRate adds a packet to the bit rate window. Called with wmu held.
func (t *trackState) countRate(n int, now int64) {
	t.rateBytes += uint64(n)
	if t.rateStart == 0 {
		t.rateStart = now
		return
	}
	if d := now - t.rateStart; d >= int64(rateWindow) {
		t.bitrate.Store(int64(t.rateBytes * 8 * uint64(time.Second) / uint64(d)))
		t.rateAt.Store(now)
		t.rateStart, t.rateBytes = now, 0
	}
}

// alignLayer maps a layer's packet onto its group's timeline (see above)
// and, after a publisher took the stream over, its sequence numbers onto
// the layer's previous ones. Called with wmu held.
func (t *trackState) alignLayer(p *Packet, now time.Time) {
	g := t.group
	if t.rebase || !t.aligned {
		var off uint32
		if g.clockSet {
			ticks := uint32(max(now.Sub(g.lastWall), 0).Seconds() * float64(t.Codec.ClockRate))
			off = g.lastTS + ticks - p.Timestamp
		}
		t.tsOff.Store(off)
		t.seqOff = 0
		if t.aligned {
			t.seqOff = t.lastSeq + 1 - p.SequenceNumber
		}
		t.aligned, t.rebase = true, false
	}
	p.SequenceNumber += t.seqOff
	p.Timestamp += t.tsOff.Load()
	t.lastSeq, t.lastTS, t.lastWall = p.SequenceNumber, p.Timestamp, now
	g.clockSet, g.lastTS, g.lastWall = true, p.Timestamp, now
}

// TrackKeyframer is an optional Publisher capability: a keyframe request
// for one track (one SSRC), so that a viewer switching to a simulcast
// layer does not make every layer send a keyframe.
type TrackKeyframer interface {
	RequestTrackKeyframe(track int)
}

// RequestTrackKeyframe asks for a keyframe on one track, at most once per
// PLIMinInterval per track. Without simulcast it is RequestKeyframe.
func (s *Stream) RequestTrackKeyframe(track int) bool {
	t := s.track(track)
	if t == nil || t.group == nil {
		return s.RequestKeyframe()
	}
	if !limit(&t.lastPLI, s.hub.now().UnixNano(), s.hub.cfg.PLIMinInterval) {
		return false
	}
	s.wmu.Lock()
	pub := s.pub
	s.wmu.Unlock()
	switch pub := pub.(type) {
	case nil:
		return false
	case TrackKeyframer:
		pub.RequestTrackKeyframe(track)
	default:
		pub.RequestKeyframe()
	}
	return true
}

// limit reports whether an event at now may pass a limit of one per
// interval whose last pass is in last, and records it.
func limit(last *atomic.Int64, now int64, interval time.Duration) bool {
	l := last.Load()
	return now-l >= int64(interval) && last.CompareAndSwap(l, now)
}
