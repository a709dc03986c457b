package tap

import (
	"math"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// timeline maps the RTP clocks of a stream's video and audio onto one
// timeline that starts at 0 with the first video packet read.
//
// Audio is placed against video once both have sent a packet:
//   - where RTCP sender reports have mapped both tracks to the
//     publisher's wall clock by then, from those (RFC 3550 §6.4.1: exact
//     lip sync, whatever the network did);
//   - audio of a derived track (transcoded) against video without
//     reports: from the derived track's reports, which follow its
//     source's (or its source's arrival, where it has none), and the
//     video's arrival. Its packets are not in the ring where their
//     source's are: a transcoder that starts writes the audio of the GOP
//     cached before it catches up with the live edge;
//   - otherwise by arrival: packets of both tracks are in the ring in the
//     order they came in, so the newest packet of one track when the
//     other's first comes is taken to be simultaneous with it. The error
//     is the difference of the two tracks' network and pacing delays,
//     typically a few tens of milliseconds.
//
// The placement is made once: a later sender report does not move audio
// that players have already buffered.
type timeline struct {
	st             *hub.Stream
	vIdx, aIdx     int
	hasV, hasA     bool
	q              *interleaver
	vStart, aStart bool
	vTS0, aTS0     uint32
	vPkt, aPkt     unwrapper // newest packet times, from vTS0 and aTS0
	vFrame         unwrapper // frame times, from vTS0
	aNow           int64     // time of the newest audio packet, 48 kHz from aTS0
	aRate          int64     // the audio track's RTP clock rate
	aDerived       bool      // the audio track is derived (set by Reader.pickAudio)
	vArrived0      int64     // arrival of the first video packet (hub.Packet.Arrived)

	aligned bool
	aZero   int64 // audio time (from aTS0) of timeline 0
	bySR    bool  // aligned from sender reports

	origin    time.Time // wall-clock time of timeline 0
	originSet bool
}

// unwrapper extends 32-bit RTP timestamps to a 64-bit count from a base.
type unwrapper struct {
	last uint32
	t    int64
}

func (u *unwrapper) at(ts uint32) int64 {
	u.t += int64(int32(ts - u.last))
	u.last = ts
	return u.t
}

func (tl *timeline) init(r *Reader) {
	tl.st, tl.q = r.st, &r.q
	if r.video != nil {
		tl.hasV, tl.vIdx = true, r.video.Index
	}
	if r.audio != nil {
		tl.hasA, tl.aIdx = true, r.audio.Index
	}
	tl.aRate = int64(r.audioRate)
	if tl.aRate == 0 {
		tl.aRate = audioRate
	}
}

// videoPacket notes a video packet's time.
func (tl *timeline) videoPacket(p *hub.Packet) {
	if !tl.vStart {
		tl.vStart, tl.vTS0, tl.vArrived0 = true, p.Timestamp, p.Arrived
		tl.vPkt, tl.vFrame = unwrapper{last: p.Timestamp}, unwrapper{last: p.Timestamp}
		tl.setOrigin(tl.vIdx, p.Timestamp)
		if tl.aStart {
			tl.align(false)
		}
	}
	tl.vPkt.at(p.Timestamp)
}

// audioPacket notes an audio packet's time.
func (tl *timeline) audioPacket(p *hub.Packet) {
	if !tl.aStart {
		tl.aStart, tl.aTS0 = true, p.Timestamp
		tl.aPkt = unwrapper{last: p.Timestamp}
		switch {
		case !tl.hasV:
			tl.setOrigin(tl.aIdx, p.Timestamp)
			tl.aligned = true
		case tl.vStart:
			tl.align(true)
		}
	}
	tl.aNow = tl.aPkt.at(p.Timestamp) * audioRate / tl.aRate
}

// setOrigin fixes the wall-clock time of timeline 0.
func (tl *timeline) setOrigin(track int, ts uint32) {
	if w, ok := tl.st.WallClock(track, ts); ok {
		tl.origin = w
	} else {
		tl.origin = time.Now()
	}
	tl.originSet = true
}

// align places audio against video; audioLast says that audio's first
// packet came after video's.
func (tl *timeline) align(audioLast bool) {
	wv, okv := tl.st.WallClock(tl.vIdx, tl.vTS0)
	wa, oka := tl.st.WallClock(tl.aIdx, tl.aTS0)
	switch {
	case okv && oka:
		tl.aZero = int64(math.Round(wv.Sub(wa).Seconds() * float64(audioRate)))
		tl.bySR = true
	case oka && tl.aDerived && tl.vArrived0 != 0:
		wv = time.Unix(0, tl.vArrived0)
		tl.aZero = int64(math.Round(wv.Sub(wa).Seconds() * float64(audioRate)))
	case audioLast:
		// The first audio packet is as old as the newest video packet.
		tl.aZero = -tl.vPkt.t * audioRate / videoRate
	default:
		// Timeline 0 (the first video packet) is as old as the newest
		// audio packet.
		tl.aZero = tl.aNow
	}
	tl.aligned = true
	tl.q.alignAudio(tl.aZero)
}

// Clock rates of the Reader's tracks.
const (
	videoRate = 90000
	audioRate = 48000
)

// videoUnit stamps a rebuilt video frame.
func (tl *timeline) videoUnit(f *media.Frame, gen uint32) *Unit {
	return &Unit{Track: tl.q.video, PTS: tl.vFrame.at(f.RTPTimestamp), Key: f.Keyframe, Gen: gen, NALUs: f.NALUs, Payload: f.Payload}
}

// audioUnit stamps an audio access unit whose time is t (48 kHz from the
// first audio packet).
func (tl *timeline) audioUnit(t int64, payload []byte, gen uint32) *Unit {
	u := &Unit{PTS: t, Key: true, Gen: gen, Payload: payload}
	if tl.aligned {
		u.PTS -= tl.aZero
	}
	return u
}
