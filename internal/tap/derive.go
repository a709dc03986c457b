package tap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// Transcoders is the hub's Deriver (hub/derive.go): for each AAC or G.711
// track a stream declares it declares an Opus track, and while a consumer
// (a WebRTC viewer) demands it, it runs one transcoder that reads the
// source track from the ring, decodes it, encodes Opus and writes the
// packets back into the stream as that track, once for every viewer. The
// transcoder starts with the first demand and stops IdleClose after the
// last; with Always it runs from the track's declaration to the stream's
// end, so a viewer hears sound from its first packet.
type Transcoders struct {
	cfg   TranscodersConfig
	avail error

	mu      sync.Mutex
	running map[runKey]*runner
	closed  bool
	wg      sync.WaitGroup
	logOnce sync.Once
}

// TranscodersConfig configures Transcoders.
type TranscodersConfig struct {
	// Opus is the encoder's configuration; Channels 0 keeps the
	// source's (stereo stays stereo).
	Opus transcode.OpusConfig
	// IdleClose is how long a transcoder runs on after its last consumer
	// left (0: 10 s), so a viewer that reconnects finds it running.
	IdleClose time.Duration
	// Always keeps every transcoder running while its stream lives.
	Always bool
	// Log gets a line when transcoders are unavailable (once) or fail.
	Log *slog.Logger
}

// NewTranscoders returns the deriver; it checks once whether this binary
// can transcode (transcode.Available).
func NewTranscoders(cfg TranscodersConfig) *Transcoders {
	if cfg.IdleClose <= 0 {
		cfg.IdleClose = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Transcoders{cfg: cfg, avail: transcode.Available(), running: make(map[runKey]*runner)}
}

var _ hub.Deriver = (*Transcoders)(nil)

type runKey struct {
	st    *hub.Stream
	track int
}

// runner is one transcoder: a goroutine of the Transcoders' own.
type runner struct {
	key    runKey
	users  int
	pinned bool        // Always: no idle close
	idle   *time.Timer // armed while users == 0
	cancel context.CancelFunc
	done   chan struct{}
}

// Derive offers an Opus track for an AAC or G.711 one.
func (x *Transcoders) Derive(c media.Codec) ([]media.Codec, error) {
	ok, _ := isG711(c)
	if !ok && !isAAC(c) {
		return nil, nil
	}
	if x.avail != nil {
		x.logOnce.Do(func() {
			x.cfg.Log.Warn("audio transcoding unavailable: WebRTC viewers of AAC and G.711 streams get video only", "err", x.avail)
		})
		return nil, fmt.Errorf("unavailable: %w", x.avail)
	}
	_, ch, err := sourceFormat(c)
	if err != nil {
		return nil, fmt.Errorf("unavailable: %w", err)
	}
	if x.cfg.Opus.Channels != 0 {
		ch = x.cfg.Opus.Channels
	}
	return []media.Codec{ingest.OpusCodec(ch)}, nil
}

// Added starts the transcoder at once with Always.
func (x *Transcoders) Added(w *hub.Writer, d hub.Track) {
	if x.cfg.Always {
		x.acquire(w, d, true)
	}
}

// Demand starts the transcoder of d if it is not running.
func (x *Transcoders) Demand(w *hub.Writer, d hub.Track) (release func()) {
	r := x.acquire(w, d, false)
	if r == nil {
		return func() {}
	}
	var once sync.Once
	return func() { once.Do(func() { x.release(r) }) }
}

func (x *Transcoders) acquire(w *hub.Writer, d hub.Track, pin bool) *runner {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return nil
	}
	k := runKey{w.Stream(), d.Index}
	r := x.running[k]
	if r == nil {
		ctx, cancel := context.WithCancel(context.Background())
		r = &runner{key: k, cancel: cancel, done: make(chan struct{})}
		x.running[k] = r
		x.wg.Add(1)
		go func() {
			defer x.wg.Done()
			defer close(r.done)
			x.run(ctx, w, d)
			x.mu.Lock()
			if x.running[k] == r {
				delete(x.running, k)
			}
			x.mu.Unlock()
		}()
	}
	r.pinned = r.pinned || pin
	if !pin {
		r.users++
	}
	if r.idle != nil {
		r.idle.Stop()
		r.idle = nil
	}
	return r
}

func (x *Transcoders) release(r *runner) {
	x.mu.Lock()
	defer x.mu.Unlock()
	r.users--
	if r.users > 0 || r.pinned || x.running[r.key] != r {
		return
	}
	r.idle = time.AfterFunc(x.cfg.IdleClose, func() {
		x.mu.Lock()
		stop := r.users == 0 && x.running[r.key] == r
		if stop {
			delete(x.running, r.key)
			r.cancel()
		}
		x.mu.Unlock()
	})
}

// Running returns the number of transcoders running.
func (x *Transcoders) Running() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.running)
}

// Close stops every transcoder and waits for them.
func (x *Transcoders) Close() {
	x.mu.Lock()
	x.closed = true
	for k, r := range x.running {
		if r.idle != nil {
			r.idle.Stop()
		}
		r.cancel()
		delete(x.running, k)
	}
	x.mu.Unlock()
	x.wg.Wait()
}

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
		log.Warn("audio transcoder failed: viewers get no audio from it", "from", src.Codec.Name(), "err", err)
	}
}

func (x *Transcoders) transcode(ctx context.Context, hw *hub.Writer, src, d hub.Track) error {
	st := hw.Stream()
	in, err := newPCMSource(src.Codec)
	if err != nil {
		return err
	}
	defer in.close()
	cfg := x.cfg.Opus
	cfg.Channels = transcode.ChannelsFromFmtp(d.Codec.Fmtp)
	cfg.From = strings.ToLower(src.Codec.Name())
	if isAAC(src.Codec) {
		cfg.From = "aac"
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000 * cfg.Channels
	}
	enc, err := transcode.NewToOpus(cfg, in.rate, in.channels)
	if err != nil {
		return err
	}
	defer enc.Close()
	cur, err := st.Tap()
	if err != nil {
		return err
	}
	defer cur.Close()
	cur.OwnPackets() // the AAC depacketizer keeps fragments of payloads
	w := &originWriter{w: hw}
	ft, err := ingest.NewFrameTrack(d.Codec, d.Index, w, nil)
	if err != nil {
		return err
	}
	var clock unwrapper
	started := false
	var lastSR media.SenderReport
	var arrivalSR time.Time
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
			clock = unwrapper{last: p.Timestamp, t: int64(p.Timestamp)}
		}
		ext := clock.at(p.Timestamp)
		err = in.push(p, func(pcm []float32, ts uint32) error {
			at := ext + int64(int32(ts-p.Timestamp))
			out, err := enc.Push(pcm, at*transcode.SampleRate/int64(in.rate))
			for _, o := range out {
				if werr := ft.Write(ticksToDuration(o.TS), ticksToDuration(o.TS), [][]byte{o.Payload}); werr != nil {
					return werr
				}
				w.learn(o.TS)
			}
			return err
		})
		if err != nil {
			return err
		}
		if !w.known {
			continue
		}
		// The output's sender reports are the source's, on its clock:
		// viewers line it up with the video as the publisher's reports
		// do. A source without reports (RTMP, SRT) gets them from its
		// packets' arrival, as viewers' reports of its video are.
		out := func(srcTS int64) uint32 {
			return w.origin + uint32(srcTS*transcode.SampleRate/int64(in.rate))
		}
		if sr, ok := st.SenderReport(src.Index); ok {
			if sr != lastSR {
				lastSR = sr
				hw.SetSenderReport(d.Index, media.ToNTP(sr.NTP), out(ext+int64(int32(sr.RTP-p.Timestamp))))
			}
		} else if arrived := time.Unix(0, p.Arrived); p.Arrived != 0 && arrived.Sub(arrivalSR) >= time.Second {
			arrivalSR = arrived
			hw.SetSenderReport(d.Index, media.ToNTP(arrived), out(ext))
		}
	}
}

// ticksToDuration is a 48 kHz tick count as the duration that
// ingest.FrameTrack turns back into exactly that many ticks: its
// conversion truncates toward zero, so the nanoseconds are rounded away
// from zero (the first packets' times are negative where the encoder's
// lookahead is taken off a source starting near 0).
func ticksToDuration(t int64) time.Duration {
	s, r := t/transcode.SampleRate, t%transcode.SampleRate
	ns := (r*int64(time.Second) + transcode.SampleRate - 1) / transcode.SampleRate
	if r < 0 {
		ns = -((-r*int64(time.Second) + transcode.SampleRate - 1) / transcode.SampleRate)
	}
	return time.Duration(s)*time.Second + time.Duration(ns)
}

// originWriter passes the frame writer's packets to the stream and tells
// the random origin of its timestamps, which the sender reports need.
type originWriter struct {
	w      *hub.Writer
	last   uint32 // timestamp of the newest packet
	origin uint32 // last minus the ticks written, once known
	known  bool
}

func (w *originWriter) Write(p *hub.Packet) {
	w.last = p.Timestamp
	w.w.Write(p)
}

// learn notes that the newest packet was written for ticks.
func (w *originWriter) learn(ticks int64) {
	if !w.known {
		w.origin, w.known = w.last-uint32(ticks), true
	}
}
