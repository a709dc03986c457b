package tap

import (
	"context"
	"errors"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
)

// run transcodes track d.Source of w's stream into d until ctx is done
// or the stream ends.
func (x *Transcoders) run(ctx context.Context, w *hub.Writer, d hub.Track) {
	log := x.cfg.Log.With("stream", w.Name(), "track", d.Index)
	var src hub.Track
	for _, t := range w.Stream().Tracks() {
		if t.Index == d.Source {
			src = t
		}
	}
	err := x.transcode(ctx, w, src, d)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, hub.ErrEnded):
	default:
		log.Warn("audio transcoder failed: its consumers get no audio from it", "from", src.Codec.Name(),
			"to", d.Codec.Name(), "err", err)
	}
}

func (x *Transcoders) transcode(ctx context.Context, hw *hub.Writer, src, d hub.Track) error {
	pp, err := x.newPipe(src.Codec, d.Codec)
	if err != nil {
		return err
	}
	defer pp.close()
	// The cursor starts at the newest keyframe: the audio the ring holds
	// from there is transcoded at once, so a consumer that started the
	// transcoder gets audio from the same point as its video. Without a
	// keyframe (an audio-only stream) it starts 100 ms of the source's
	// audio back, enough for every encoder's first frame (AAC's, held
	// back one frame, needs 43 ms).
	cur, err := hw.Stream().Tap()
	if err != nil {
		return err
	}
	defer cur.Close()
	cur.OwnPackets() // the AAC depacketizer keeps fragments of payloads
	cur.RewindTrack(src.Index, src.Codec.ClockRate/10, rewindSlots)
	j := &job{hw: hw, st: hw.Stream(), src: src, d: d, inRate: int64(src.Codec.ClockRate), outRate: int64(d.Codec.ClockRate)}
	if x.cfg.Lag != nil {
		j.lag = x.cfg.Lag(hw.Name())
		defer j.lag.Close()
	}
	ft, err := ingest.NewFrameTrack(d.Codec, d.Index, j, nil)
	if err != nil {
		return err
	}
	emit := func(ts int64, au []byte) error {
		j.pending = ts
		t := ticksToDuration(ts, j.outRate)
		return ft.Write(t, t, [][]byte{au})
	}
	started := false
	for {
		p, _, err := cur.Next(ctx)
		if err != nil {
			return err
		}
		if p.Track != src.Index {
			continue
		}
		if !started {
			started = true
			j.clock = unwrapper{last: p.Timestamp, t: int64(p.Timestamp)}
		}
		j.p, j.ext = p, j.clock.at(p.Timestamp)
		if err := pp.push(p, j.ext, emit); err != nil {
			return err
		}
		if j.known {
			j.report()
		}
	}
}

// rewindSlots bounds how far back in the ring a transcoder without a
// keyframe to start from looks for its source's audio.
const rewindSlots = 256

// job is one running transcoder's state between the source packets it
// reads and the derived packets it writes.
type job struct {
	hw              *hub.Writer
	st              *hub.Stream
	src, d          hub.Track
	inRate, outRate int64
	lag             Gauge // nil: not reported

	clock unwrapper
	p     *hub.Packet // the source packet being transcoded
	ext   int64       // its extended RTP time

	pending int64  // output time of the access unit being written
	origin  uint32 // RTP time of output time 0, once known
	known   bool

	lastSR    media.SenderReport
	arrivalSR time.Time
}

// Write passes the frame writer's packets to the stream. The first one
// tells the random origin of the frame writer's timestamps, which the
// sender reports need: the first report goes out before the first packet,
// so that a consumer lining the track up by reports never waits for one.
func (j *job) Write(p *hub.Packet) {
	if !j.known {
		j.origin = p.Timestamp - uint32(j.pending)
		j.known = true
		j.report()
	}
	if j.lag != nil && j.p.Arrived != 0 {
		j.lag.Set(time.Since(time.Unix(0, j.p.Arrived)))
	}
	j.hw.Write(p)
}

// report updates the derived track's sender report. The output's reports
// are the source's, on its clock: consumers line it up with the video as
// the publisher's reports do. A source without reports (RTMP, SRT) gets
// them from its packets' arrival, as viewers' reports of its video are.
func (j *job) report() {
	out := func(srcTS int64) uint32 {
		return j.origin + uint32(srcTS*j.outRate/j.inRate)
	}
	if sr, ok := j.st.SenderReport(j.src.Index); ok {
		if sr != j.lastSR {
			j.lastSR = sr
			j.hw.SetSenderReport(j.d.Index, media.ToNTP(sr.NTP), out(j.ext+int64(int32(sr.RTP-j.p.Timestamp))))
		}
	} else if arrived := time.Unix(0, j.p.Arrived); j.p.Arrived != 0 && arrived.Sub(j.arrivalSR) >= time.Second {
		j.arrivalSR = arrived
		j.hw.SetSenderReport(j.d.Index, media.ToNTP(arrived), out(j.ext))
	}
}

// ticksToDuration is a tick count of a clock of rate Hz as the duration
// that ingest.FrameTrack turns back into exactly that many ticks: its
// conversion truncates toward zero, so the nanoseconds are rounded away
// from zero (the first packets' times are negative where an encoder's
// lookahead or priming is taken off a source starting near 0).
func ticksToDuration(t, rate int64) time.Duration {
	s, r := t/rate, t%rate
	ns := (r*int64(time.Second) + rate - 1) / rate
	if r < 0 {
		ns = -((-r*int64(time.Second) + rate - 1) / rate)
	}
	return time.Duration(s)*time.Second + time.Duration(ns)
}
