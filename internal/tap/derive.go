package tap

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// Transcoders is the hub's Deriver (hub/derive.go), the one mechanism
// behind every audio transcoding: for each track a stream declares that
// some consumer cannot take as it is, it declares a derived track in the
// codec that consumer takes, and while a consumer demands that track it
// runs one transcoder that reads the source track from the ring, decodes
// it, encodes the other codec and writes the packets back into the stream
// as the derived track, once for every consumer:
//
//	source      derived   for
//	AAC         Opus      WebRTC viewers
//	G.711       Opus      WebRTC viewers whose offer has no PCMU/PCMA
//	G.711       AAC       LL-HLS, recordings, RTMP and SRT readers, forwards
//	Opus        AAC       LL-HLS, recordings, RTMP and SRT readers, forwards
//	Opus, AAC   PCMU      WebRTC viewers whose offer has only PCMU (SIP gateways)
//	Opus, AAC   PCMA      WebRTC viewers whose offer has only PCMA
//
// A transcoder starts with the first demand and stops IdleClose after the
// last; with Always it runs from the track's declaration to the stream's
// end, so a consumer gets audio from its first packet (but for G.711 out,
// which runs on demand only).
type Transcoders struct {
	cfg   TranscodersConfig
	avail error

	mu      sync.Mutex
	running map[runKey]*runner
	closed  bool
	wg      sync.WaitGroup
	logOnce sync.Once

	aacMu  sync.Mutex
	aacASC map[int][]byte // the AAC encoder's AudioSpecificConfig by channels
}

// TranscodersConfig configures Transcoders.
type TranscodersConfig struct {
	// Opus is the Opus encoder's configuration; Channels 0 keeps the
	// source's (stereo stays stereo).
	Opus transcode.OpusConfig
	// AAC is the AAC encoder's (Bitrate, AACOptions; the channels are
	// always the source's: stereo=1 in an Opus fmtp gives stereo).
	AAC transcode.Config
	// IdleClose is how long a transcoder runs on after its last consumer
	// left (0: 10 s), so a viewer that reconnects finds it running.
	IdleClose time.Duration
	// Always keeps every transcoder running while its stream lives.
	Always bool
	// Lag, if set, gives a stream's gauge of how far a transcoder trails
	// the live edge: from a source packet's arrival in the stream to its
	// transcoded packets being written. Set with every packet written,
	// closed with the transcoder.
	Lag func(stream string) Gauge
	// Log gets a line when transcoders are unavailable (once) or fail.
	Log *slog.Logger
}

// Gauge is a duration a transcoder keeps up to date (a *metrics.Lag is one).
type Gauge interface {
	Set(time.Duration)
	Close()
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
	return &Transcoders{cfg: cfg, avail: transcode.Available(), running: make(map[runKey]*runner), aacASC: make(map[int][]byte)}
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

// Derive offers an Opus and an AAC track for a G.711 one, an Opus, a PCMU
// and a PCMA track for an AAC one, and an AAC, a PCMU and a PCMA track for
// an Opus one.
func (x *Transcoders) Derive(c media.Codec) ([]media.Codec, error) {
	g711, _ := isG711(c)
	opus := isOpus(c)
	if !g711 && !opus && !isAAC(c) {
		return nil, nil
	}
	if x.avail != nil {
		x.logOnce.Do(func() {
			x.cfg.Log.Warn("audio transcoding unavailable: WebRTC viewers of AAC and G.711 streams get video only, "+
				"LL-HLS, recordings, RTMP and SRT readers of Opus and G.711 streams get no audio", "err", x.avail)
		})
		return nil, fmt.Errorf("unavailable: %w", x.avail)
	}
	if opus {
		aac, err := x.aacCodec(transcode.ChannelsFromFmtp(c.Fmtp))
		if err != nil {
			return nil, fmt.Errorf("unavailable: %w", err)
		}
		return append([]media.Codec{aac}, g711Codecs()...), nil
	}
	_, ch, err := sourceFormat(c)
	if err != nil {
		return nil, fmt.Errorf("unavailable: %w", err)
	}
	opusCh := ch
	if x.cfg.Opus.Channels != 0 {
		opusCh = x.cfg.Opus.Channels
	}
	out := []media.Codec{ingest.OpusCodec(opusCh)}
	if !g711 {
		return append(out, g711Codecs()...), nil
	}
	aac, err := x.aacCodec(ch)
	if err != nil {
		return nil, fmt.Errorf("unavailable: %w", err)
	}
	return append(out, aac), nil
}

// g711Codecs are the derived G.711 tracks: μ-law, then A-law, 8 kHz mono.
func g711Codecs() []media.Codec {
	return []media.Codec{ingest.G711Codec(true, transcode.G711Rate, 1), ingest.G711Codec(false, transcode.G711Rate, 1)}
}

// aacCodec is the codec of an AAC track the encoder makes with ch
// channels: its AudioSpecificConfig is the encoder's own, asked once.
func (x *Transcoders) aacCodec(ch int) (media.Codec, error) {
	x.aacMu.Lock()
	defer x.aacMu.Unlock()
	asc, ok := x.aacASC[ch]
	if !ok {
		bitrate := x.cfg.AAC.Bitrate
		if bitrate == 0 {
			bitrate = 64000 * ch
		}
		opts := x.cfg.AAC.AACOptions
		if opts == "" {
			opts = transcode.DefaultAACOptions
		}
		newEnc := x.cfg.AAC.NewEncoder
		if newEnc == nil {
			newEnc = func(ch, bitrate int) (transcode.Encoder, error) { return transcode.NewFFmpegEncoder(ch, bitrate, opts) }
		}
		enc, err := newEnc(ch, bitrate)
		if err != nil {
			return media.Codec{}, err
		}
		c := enc.Config()
		enc.Close()
		if asc, err = c.Marshal(); err != nil {
			return media.Codec{}, err
		}
		x.aacASC[ch] = asc
	}
	return ingest.AACCodec(asc)
}

// Added starts the transcoder at once with Always, but for G.711 out of
// Opus: only a viewer offering nothing else takes it, and it starts as
// fast as the others (BenchmarkTranscoderStart).
func (x *Transcoders) Added(w *hub.Writer, d hub.Track) {
	if g711, _ := isG711(d.Codec); x.cfg.Always && !g711 {
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
