// Package tap reads one live stream for the server-side outputs that remux
// it (LL-HLS, recordings). A Reader opens a hub cursor of its own (not a
// viewer), rebuilds access units with internal/frame, transcodes Opus to
// AAC with internal/transcode where asked, puts audio and video on one
// timeline and hands the units out in presentation order, so that a muxer
// can write them as they come.
//
// A Reader runs in its caller's goroutine. It never blocks the stream's
// publisher: a Reader that falls behind the ring skips ahead like any
// cursor (and video resumes at the next keyframe).
//
// A Pool shares one Reader (so one transcoder) among the outputs of a
// stream that want the same thing, LL-HLS and a recording: each gets a
// Subscription to the units the Reader makes.
package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/transcode"
)

// ErrNoTracks means the stream has no track the output can carry: no
// H264/H265/VP9/AV1 video and no usable audio.
var ErrNoTracks = errors.New("no H264, H265, VP9, AV1, Opus, AAC or G.711 track")

// Audio says what a Reader does with the stream's Opus track.
type Audio int

// Audio modes.
const (
	AudioNone Audio = iota // leave audio out
	AudioAAC               // transcode Opus to AAC-LC; no audio where transcoding is unavailable
	AudioOpus              // pass Opus through as published
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
	// Transcode configures the Opus→AAC transcoder (AudioAAC); Channels 0
	// takes the publisher's (stereo=1 in the fmtp: 2, else 1).
	Transcode transcode.Config
	// MaxWait bounds how far, in media time, one track runs ahead of the
	// other before its units go out without waiting for the other track
	// (a stalled or silent track); 0 means 1 s.
	MaxWait time.Duration
	// Log gets one line when audio is left out (transcoding unavailable
	// or failing); nil logs nothing.
	Log *slog.Logger
	// TranscoderLag, if set, gives the stream's gauge of how far the
	// transcoder trails the live edge: from an Opus packet's arrival in
	// the stream to its AAC frames coming out. The Reader sets it with
	// every transcoded packet and closes it with the transcoder.
	TranscoderLag func(stream string) Gauge
}

// Gauge is a duration a Reader keeps up to date (a *metrics.Lag is one).
type Gauge interface {
	Set(time.Duration)
	Close()
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
	tc           *transcode.Transcoder
	lag          Gauge // nil: not reported
	audioErr     error

	// AAC and G.711 sources (audiosrc.go).
	aacIn     *aacDepacketizer // AAC passed through
	pcmIn     *pcmSource       // G.711 decoded for toAAC
	toAAC     *transcode.ToAAC
	audioRate int    // the audio track's RTP clock rate
	release   func() // demand of a derived Opus track read

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
	r := &Reader{st: st, opt: opt}
	var opus, other *hub.Track
	for _, t := range st.Tracks() {
		g711, _ := isG711(t.Codec)
		switch name := strings.ToUpper(t.Codec.Name()); {
		case t.Derived && (opt.Audio != AudioOpus || opus != nil):
			// Transcoded for WebRTC viewers; only an Opus recording of a
			// stream published without Opus takes it.
		case t.Derived:
			opus = &t
		case r.video == nil && (name == "H264" || name == "H265" || name == "HEVC" || name == "VP9" || name == "AV1"):
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
		case opus == nil && name == "OPUS" && t.Codec.ClockRate == transcode.SampleRate:
			opus = &t
		case other == nil && (g711 || isAAC(t.Codec)):
			other = &t
		}
	}
	switch {
	case opus != nil && (other == nil || opt.Audio == AudioOpus):
		r.openAudio(*opus)
	case other != nil && opt.Audio == AudioAAC:
		r.openOtherAudio(*other)
	}
	if r.video == nil && r.audio == nil {
		return nil, ErrNoTracks
	}
	cur, err := st.Tap()
	if err != nil {
		r.closeAudio()
		return nil, err
	}
	// Frames keep slices of the packets' payloads (nal units, Opus
	// packets) in the interleave queue and in every output after it.
	cur.OwnPackets()
	if r.audio != nil && r.audio.Codec == Opus {
		r.release = st.Demand(r.audio.Index) // a derived track: keep it written
	}
	r.cur = cur
	r.tl.init(r)
	r.q.init(r.video, r.audio, opt.MaxWait)
	return r, nil
}

// openAudio sets up an Opus track for the mode asked.
func (r *Reader) openAudio(t hub.Track) {
	r.audioRate = transcode.SampleRate
	ch := transcode.ChannelsFromFmtp(t.Codec.Fmtp)
	switch r.opt.Audio {
	case AudioOpus:
		r.audio = &Track{Codec: Opus, ClockRate: transcode.SampleRate, Channels: ch, Index: t.Index}
	case AudioAAC:
		cfg := r.opt.Transcode
		if cfg.Channels == 0 {
			cfg.Channels = ch
		}
		tc, err := transcode.New(cfg)
		if err != nil {
			r.audioErr = err
			return
		}
		asc := tc.Config()
		if asc.SampleRate != transcode.SampleRate {
			tc.Close()
			r.audioErr = fmt.Errorf("transcode: AAC at %d Hz, want %d", asc.SampleRate, transcode.SampleRate)
			return
		}
		r.tc = tc
		if r.opt.TranscoderLag != nil {
			r.lag = r.opt.TranscoderLag(r.st.Name())
		}
		r.audio = &Track{Codec: AAC, ClockRate: transcode.SampleRate, Channels: tc.Channels(), AAC: asc, Index: t.Index}
	}
}

// Video is the video track, or nil.
func (r *Reader) Video() *Track { return r.video }

// Audio is the audio track, or nil.
func (r *Reader) Audio() *Track { return r.audio }

// AudioErr says why the stream's audio is left out (transcoding
// unavailable, or it failed), or nil.
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
			r.flushAudio()
			continue
		}
		r.gen = p.Gen
		switch {
		case r.video != nil && p.Track == r.video.Index:
			r.tl.videoPacket(p)
			if f, ok := r.vdep.Push(p); ok {
				r.q.push(r.tl.videoUnit(f, p.Gen))
			}
		case r.audio != nil && p.Track == r.audio.Index:
			r.tl.audioPacket(p)
			if r.aacIn != nil || r.pcmIn != nil {
				r.otherAudioPacket(p)
			} else {
				r.audioPacket(p)
			}
		}
	}
}

// audioPacket passes an Opus packet through or transcodes it.
func (r *Reader) audioPacket(p *hub.Packet) {
	if r.tc == nil {
		if len(p.Payload) > 0 {
			r.q.push(r.tl.audioUnit(r.tl.aNow, p.Payload, p.Gen))
		}
		return
	}
	out, err := r.tc.Push(p.Payload, p.Timestamp, p.SequenceNumber)
	r.pushAAC(out)
	if r.lag != nil && len(out) > 0 && p.Arrived != 0 {
		r.lag.Set(time.Since(time.Unix(0, p.Arrived)))
	}
	if err != nil {
		r.dropAudio(err)
	}
}

func (r *Reader) pushAAC(out []transcode.AACFrame) {
	for _, f := range out {
		// The transcoder's PTS counts from the first packet pushed, which
		// is the audio timeline's start.
		r.q.push(r.tl.audioUnit(f.PTS, f.Payload, r.gen))
	}
}

// flushAudio drains the transcoder at the stream's end.
func (r *Reader) flushAudio() {
	if r.tc == nil {
		return
	}
	out, _ := r.tc.Flush()
	r.pushAAC(out)
}

// dropAudio leaves audio out from now on after a transcoder failure.
func (r *Reader) dropAudio(err error) {
	r.audioErr = err
	if r.opt.Log != nil {
		r.opt.Log.Warn("audio left out", "stream", r.st.Name(), "err", err)
	}
	r.closeAudio()
	r.q.stopAudio()
	r.audio = nil
}

func (r *Reader) closeAudio() {
	r.closeOtherAudio()
	if r.tc != nil {
		r.tc.Close()
		r.tc = nil
	}
	if r.lag != nil {
		r.lag.Close()
		r.lag = nil
	}
}

// Close releases the cursor and the transcoder.
func (r *Reader) Close() {
	r.cur.Close()
	r.closeAudio()
	if r.release != nil {
		r.release()
	}
}
