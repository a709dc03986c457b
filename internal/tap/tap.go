// Package tap reads one live stream for the server-side outputs that remux
// it (LL-HLS, recordings, RTMP and SRT readers, forwards). A Reader opens
// a hub cursor of its own (not a viewer), rebuilds access units with
// internal/frame, puts audio and video on one timeline and hands the units
// out in presentation order, so that a muxer can write them as they come.
// Audio in another codec than the one an output takes is a derived track
// of the stream (Transcoders, the hub's Deriver), which a Reader reads
// like a published one and demands while it reads it.
//
// A Reader runs in its caller's goroutine. It never blocks the stream's
// publisher: a Reader that falls behind the ring skips ahead like any
// cursor (and video resumes at the next keyframe).
//
// A Pool shares one Reader among the outputs of a stream that want the
// same thing, LL-HLS and a recording: each gets a Subscription to the
// units the Reader makes.
package tap

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// ErrNoTracks means the stream has no track the output can carry: no
// H264/H265/VP9/AV1 video and no usable audio.
var ErrNoTracks = errors.New("no H264, H265, VP9, AV1, Opus, AAC or G.711 track")

// Audio says which audio a Reader hands out.
type Audio int

// Audio modes.
const (
	AudioNone Audio = iota // leave audio out
	AudioAAC               // AAC: published, else derived (from Opus, G.711); none where transcoding is unavailable
	AudioOpus              // Opus: published, else derived (from AAC, G.711)
)

// Codec names the codec of a Reader's track.
type Codec string

// The codecs a Reader hands out.
const (
	H264 Codec = "H264"
	H265 Codec = "H265"
	VP9  Codec = "VP9" // Unit.Payload is the frame
	AV1  Codec = "AV1" // Unit.NALUs are the OBUs of a temporal unit
	AAC  Codec = "AAC"
	Opus Codec = "Opus"
)

// Options configure a Reader. The zero value reads video only.
type Options struct {
	Audio Audio
	// MaxWait bounds how far, in media time, one track runs ahead of the
	// other before its units go out without waiting for the other track
	// (a stalled or silent track); 0 means 1 s. Video waits longer for a
	// derived audio track, late in the ring where its transcoder starts:
	// through what the Reader reads until the ring has gone MaxWait past
	// its start (the cached GOP and its audio).
	MaxWait time.Duration
}

// Track is one track of a Reader's output.
type Track struct {
	Codec     Codec
	ClockRate int // units of Unit.PTS: 90000 for video, 48000 for audio
	Channels  int // audio
	// AAC is the AudioSpecificConfig of the AAC access units.
	AAC mpeg4audio.AudioSpecificConfig
	// Index is the stream track it comes from.
	Index int
}

// IsVideo reports whether the track carries video.
func (t *Track) IsVideo() bool {
	return t.Codec == H264 || t.Codec == H265 || t.Codec == VP9 || t.Codec == AV1
}

// Unit is one access unit of a Reader's output.
type Unit struct {
	Track *Track
	// PTS is the presentation time in Track.ClockRate units on the
	// Reader's timeline, which starts at 0 with the first video packet
	// read (the first audio packet for audio-only streams). Audio may
	// start before 0. Units come out in PTS order across tracks.
	PTS int64
	// Wall is the capture time: the timeline's origin (from RTCP sender
	// reports where they came in time, else the time the Reader started)
	// plus PTS.
	Wall time.Time
	Key  bool   // video: a random access point; audio: always
	Gen  uint32 // which publisher of the stream sent it (hub.Packet.Gen)
	// NALUs (H264, H265, AV1) share memory with the Reader's copies of
	// the ring's packets (hub.Cursor.OwnPackets) and with every output:
	// read only.
	NALUs [][]byte
	// Payload is a VP9 frame (read only, as NALUs), an AAC access unit
	// (raw, no ADTS) or an Opus packet.
	Payload []byte
}

// Time is the unit's PTS as a duration.
func (u *Unit) Time() time.Duration {
	// In two steps: PTS×1e9 overflows after a day of 90 kHz video.
	rate := int64(u.Track.ClockRate)
	return time.Duration(u.PTS/rate)*time.Second + time.Duration(u.PTS%rate)*time.Second/time.Duration(rate)
}

// Reader turns a stream into timed units. It is used by one goroutine.
type Reader struct {
	st  *hub.Stream
	cur *hub.Cursor
	opt Options

	video, audio *Track
	vdep         frame.Depacketizer
	audioErr     error

	aacIn     *aacDepacketizer // AudioAAC: the AAC track's depacketizer
	audioRate int              // the audio track's RTP clock rate
	release   func()           // the demand of the audio track read

	tl timeline
	q  interleaver

	gen   uint32
	ended error // the cursor's end, once it came
}

// Open waits until the stream's tracks are known (bounded by ctx and the
// stream's end), then opens a cursor on it at its newest keyframe.
func Open(ctx context.Context, st *hub.Stream, opt Options) (*Reader, error) {
	select {
	case <-st.Ready():
	case <-st.Done():
		return nil, hub.ErrEnded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if opt.MaxWait <= 0 {
		opt.MaxWait = time.Second
	}
	r := &Reader{st: st, opt: opt, release: func() {}}
	var audio []hub.Track // candidates
	for _, t := range st.Tracks() {
		switch name := strings.ToUpper(t.Codec.Name()); {
		case !t.Derived && r.video == nil && (name == "H264" || name == "H265" || name == "HEVC" || name == "VP9" || name == "AV1"):
			c := H264
			switch name {
			case "H265", "HEVC":
				c = H265
			case "VP9":
				c = VP9
			case "AV1":
				c = AV1
			}
			d, err := frame.ForTrack(st, t)
			if err != nil {
				return nil, err
			}
			r.video, r.vdep = &Track{Codec: c, ClockRate: 90000, Index: t.Index}, d
		case t.Codec.Kind() == media.KindAudio:
			audio = append(audio, t)
		}
	}
	r.pickAudio(audio)
	if r.video == nil && r.audio == nil {
		return nil, ErrNoTracks
	}
	if r.audio != nil {
		// A derived track is written while it is demanded: from now on.
		r.release = st.Demand(r.audio.Index)
	}
	cur, err := st.Tap()
	if err != nil {
		r.release()
		return nil, err
	}
	// Frames keep slices of the packets' payloads (nal units, Opus
	// packets, AAC access units) in the interleave queue and in every
	// output after it.
	cur.OwnPackets()
	r.cur = cur
	r.tl.init(r)
	r.q.init(r.video, r.audio, opt.MaxWait, r.tl.aDerived)
	return r, nil
}

// pickAudio takes the audio track for the mode asked: the published one
// in that codec, else one derived in it. Where there is none, audioErr
// says why a track could not be transcoded, if one could have been.
func (r *Reader) pickAudio(tracks []hub.Track) {
	if r.opt.Audio == AudioNone {
		return
	}
	want := func(t hub.Track) bool {
		if r.opt.Audio == AudioOpus {
			return isOpus(t.Codec)
		}
		return isAAC(t.Codec)
	}
	var pick *hub.Track
	for _, derived := range []bool{false, true} {
		for i, t := range tracks {
			if pick == nil && t.Derived == derived && want(t) {
				pick = &tracks[i]
			}
		}
	}
	if pick == nil {
		for _, t := range tracks {
			if t.DeriveErr != "" && r.audioErr == nil {
				r.audioErr = fmt.Errorf("%s audio: %s", t.Codec.Name(), t.DeriveErr)
			}
		}
		return
	}
	t := *pick
	r.audioRate = int(t.Codec.ClockRate)
	r.tl.aDerived = t.Derived
	if r.opt.Audio == AudioOpus {
		r.audio = &Track{Codec: Opus, ClockRate: transcode.SampleRate, Channels: transcode.ChannelsFromFmtp(t.Codec.Fmtp), Index: t.Index}
		return
	}
	p, err := parseAAC(t.Codec)
	if err != nil {
		r.audioErr = err
		return
	}
	r.aacIn = newAACDepacketizer(p)
	r.audio = &Track{Codec: AAC, ClockRate: transcode.SampleRate, Channels: aacChannels(p.config), AAC: p.config, Index: t.Index}
}

// Video is the video track, or nil.
func (r *Reader) Video() *Track { return r.video }

// Audio is the audio track, or nil.
func (r *Reader) Audio() *Track { return r.audio }

// AudioErr says why the stream's audio is left out (transcoding
// unavailable), or nil.
func (r *Reader) AudioErr() error { return r.audioErr }

// Stream is the stream read.
func (r *Reader) Stream() *hub.Stream { return r.st }

// Next returns the next unit in presentation order. It blocks until one
// is ready, the stream ends (hub.ErrEnded, after the units still held)
// or ctx is done.
func (r *Reader) Next(ctx context.Context) (*Unit, error) {
	for {
		if u := r.q.pop(r.ended != nil); u != nil {
			u.Wall = r.tl.origin.Add(u.Time())
			return u, nil
		}
		if r.ended != nil {
			return nil, r.ended
		}
		p, _, err := r.cur.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			r.ended = err
			continue
		}
		r.gen = p.Gen
		r.q.read(p.Arrived)
		switch {
		case r.video != nil && p.Track == r.video.Index:
			r.tl.videoPacket(p)
			if f, ok := r.vdep.Push(p); ok {
				r.q.push(r.tl.videoUnit(f, p.Gen))
			}
		case r.audio != nil && p.Track == r.audio.Index:
			r.tl.audioPacket(p)
			r.audioPacket(p)
		}
	}
}

// audioPacket hands out an Opus packet, or the AAC access units an AAC
// packet completes: the first at the packet's time, the others each 1024
// samples later.
func (r *Reader) audioPacket(p *hub.Packet) {
	if r.aacIn == nil {
		if len(p.Payload) > 0 {
			r.q.push(r.tl.audioUnit(r.tl.aNow, p.Payload, p.Gen))
		}
		return
	}
	for i, au := range r.aacIn.units(p) {
		t := r.tl.aNow + int64(i*mpeg4audio.SamplesPerAccessUnit)*audioRate/int64(r.audioRate)
		r.q.push(r.tl.audioUnit(t, au, p.Gen))
	}
}

// Close releases the cursor and the demand of a derived track.
func (r *Reader) Close() {
	r.cur.Close()
	r.release()
}
