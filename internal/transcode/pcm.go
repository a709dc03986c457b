package transcode

import (
	"fmt"
	"time"
)

// The decoded side of every transcoder but Opus→AAC (which has libopus's
// loss concealment to drive, transcoder.go): PCM blocks from a decoder
// (AAC, G.711) with their time come in, whole frames for an encoder (Opus,
// AAC) go out, on the input's timeline. A framer mixes the channels to the
// output's count, resamples where the encoder cannot take the input's rate,
// fills short gaps with silence and restarts after long ones.

// framer cuts PCM into an encoder's frames. Times are in 48 kHz ticks (the
// Opus RTP clock and the AAC output's rate) on the caller's timeline.
type framer struct {
	inCh, ch     int
	inRate, rate int   // the input's and the encoder's sample rate
	frame        int   // samples per channel per frame at rate
	tick         int64 // 48 kHz ticks per frame
	rs           *Resampler
	maxGap       int64 // ticks: a longer gap restarts the timeline

	started bool
	nextIn  int64     // where the next input block should start
	fifo    []float32 // at rate, ch channels
	fifoTS  int64     // time of fifo[0]
	mixBuf  []float32
	rsBuf   []float32

	discontinuities uint64
	silence         int64 // samples per channel at rate inserted
}

func newFramer(inRate, inCh, rate, ch, frame int, maxGap time.Duration) (*framer, error) {
	if inRate < 8000 || inRate > 96000 {
		return nil, fmt.Errorf("transcode: input sample rate %d (allowed 8000..96000)", inRate)
	}
	if inCh < 1 || inCh > 2 {
		return nil, fmt.Errorf("transcode: %d input channels (allowed 1 or 2)", inCh)
	}
	if maxGap == 0 {
		maxGap = 10 * time.Second
	}
	f := &framer{inCh: inCh, ch: ch, inRate: inRate, rate: rate, frame: frame,
		tick: int64(frame) * SampleRate / int64(rate), maxGap: maxGap.Microseconds() * SampleRate / 1e6}
	if inRate != rate {
		rs, err := NewResampler(inRate, rate, ch)
		if err != nil {
			return nil, fmt.Errorf("transcode: %w", err)
		}
		f.rs = rs
	}
	return f, nil
}

// push adds pcm (interleaved, inCh channels at inRate) whose first sample
// is at ts, and calls emit with every frame it completes and that frame's
// time.
func (f *framer) push(pcm []float32, ts int64, emit func(frame []float32, ts int64) error) error {
	n := len(pcm) / f.inCh
	if n == 0 {
		return nil
	}
	const jitter = SampleRate * 5 / 1000 // timestamps this close are continuous
	if !f.started {
		f.started = true
		f.fifoTS = ts
	} else if d := ts - f.nextIn; d > jitter && d <= f.maxGap {
		// A gap (a lost access unit, DTX): silence keeps the output on the
		// input's timeline.
		k := int(d * int64(f.rate) / SampleRate)
		f.fifo = append(f.fifo, make([]float32, k*f.ch)...)
		f.silence += int64(k)
	} else if d < -jitter || d > f.maxGap {
		f.discontinuities++
		f.fifo = f.fifo[:0]
		f.fifoTS = ts
	}
	f.nextIn = ts + int64(n)*SampleRate/int64(f.inRate)

	in := f.mix(pcm, n)
	if f.rs != nil {
		var err error
		if f.rsBuf, err = f.rs.Convert(f.rsBuf[:0], in); err != nil {
			return err
		}
		in = f.rsBuf
	}
	f.fifo = append(f.fifo, in...)
	per := f.frame * f.ch
	done := 0
	var err error
	for len(f.fifo)-done >= per && err == nil {
		err = emit(f.fifo[done:done+per], f.fifoTS)
		done += per
		f.fifoTS += f.tick
	}
	f.fifo = f.fifo[:copy(f.fifo, f.fifo[done:])]
	return err
}

// mix converts n samples per channel from inCh to ch channels.
func (f *framer) mix(pcm []float32, n int) []float32 {
	if f.inCh == f.ch {
		return pcm[:n*f.ch]
	}
	f.mixBuf = f.mixBuf[:0]
	for i := range n {
		if f.inCh == 2 { // stereo to mono
			f.mixBuf = append(f.mixBuf, (pcm[2*i]+pcm[2*i+1])/2)
		} else { // mono to stereo
			f.mixBuf = append(f.mixBuf, pcm[i], pcm[i])
		}
	}
	return f.mixBuf
}

func (f *framer) close() {
	if f.rs != nil {
		f.rs.Close()
	}
}

// DefaultOpusComplexity is the libopus encoder complexity (0..10) a ToOpus
// uses unless told otherwise (see BenchmarkToOpus).
const DefaultOpusComplexity = 5

// OpusConfig says what a ToOpus makes. The zero value is valid.
type OpusConfig struct {
	// Channels of the output, 1 or 2 (0: the input's).
	Channels int
	// Bitrate in bit/s (0: 64000 per channel).
	Bitrate int
	// Complexity is libopus's, 1..10 (0: DefaultOpusComplexity).
	Complexity int
	// MaxGap is the longest timestamp gap filled with silence (0: 10 s).
	MaxGap time.Duration
	// From names the source codec in Counts ("": "pcm").
	From string
}

// OpusPacket is one 20 ms Opus packet of a ToOpus.
type OpusPacket struct {
	// TS is the time of the packet's first sample in 48 kHz ticks on the
	// input's timeline, the encoder's lookahead taken off: a decoder's
	// output is in step with the input.
	TS      int64
	Payload []byte
}

// ToOpus encodes decoded audio (AAC, G.711) to 20 ms Opus packets, on the
// input's timeline. It is used by one goroutine; Close frees the codecs.
type ToOpus struct {
	from      string
	f         *framer
	enc       *OpusEncoder
	lookahead int64 // 48 kHz ticks
	out       []OpusPacket
	frames    uint64
}

// opusRates are the input rates libopus encodes without resampling.
var opusRates = map[int]bool{8000: true, 12000: true, 16000: true, 24000: true, 48000: true}

// NewToOpus returns a ToOpus for input at inRate Hz with inChannels (1 or
// 2); its error wraps ErrUnavailable where this binary cannot transcode.
func NewToOpus(cfg OpusConfig, inRate, inChannels int) (*ToOpus, error) {
	if cfg.Channels == 0 {
		cfg.Channels = inChannels
	}
	if cfg.Channels != 1 && cfg.Channels != 2 {
		return nil, fmt.Errorf("transcode: opus channels: %d (allowed 1 or 2)", cfg.Channels)
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000 * cfg.Channels
	}
	if cfg.Bitrate < 6000 || cfg.Bitrate > 256000*cfg.Channels {
		return nil, fmt.Errorf("transcode: opus bitrate: %d (allowed 6000..%d)", cfg.Bitrate, 256000*cfg.Channels)
	}
	if cfg.Complexity == 0 {
		cfg.Complexity = DefaultOpusComplexity
	}
	rate := SampleRate
	if opusRates[inRate] {
		rate = inRate // libopus takes it as it is, cheaper than resampling
	}
	f, err := newFramer(inRate, inChannels, rate, cfg.Channels, rate/50, cfg.MaxGap)
	if err != nil {
		return nil, err
	}
	enc, err := NewOpusEncoder(rate, cfg.Channels, cfg.Bitrate, cfg.Complexity)
	if err != nil {
		f.close()
		return nil, fmt.Errorf("transcode: %w", err)
	}
	if cfg.From == "" {
		cfg.From = "pcm"
	}
	totals.start(cfg.From, "opus")
	return &ToOpus{from: cfg.From, f: f, enc: enc, lookahead: int64(enc.Lookahead()) * SampleRate / int64(rate)}, nil
}

// Channels is the output's channel count.
func (t *ToOpus) Channels() int { return t.f.ch }

// Push encodes pcm (interleaved, the input's channels and rate) whose
// first sample is at ts (48 kHz ticks) and returns the packets it
// finishes; the slice is reused by the next call, the payloads are the
// caller's.
func (t *ToOpus) Push(pcm []float32, ts int64) ([]OpusPacket, error) {
	if t.enc == nil {
		return nil, ErrClosed
	}
	t.out = t.out[:0]
	err := t.f.push(pcm, ts, func(frame []float32, ts int64) error {
		p, err := t.enc.Encode(frame)
		if err != nil {
			totals.errors.Add(1)
			return fmt.Errorf("transcode: %w", err)
		}
		t.out = append(t.out, OpusPacket{TS: ts - t.lookahead, Payload: p})
		t.frames++
		totals.opusFrames.Add(1)
		return nil
	})
	return t.out, err
}

// Close frees the codecs; it may be called more than once.
func (t *ToOpus) Close() {
	if t.enc != nil {
		t.enc.Close()
		t.f.close()
		t.enc = nil
		totals.stop(t.from, "opus")
	}
}

// ToAAC encodes decoded audio (G.711) to AAC-LC at 48 kHz for the outputs
// that take AAC, on the input's timeline (AACFrame.PTS as a Transcoder's).
type ToAAC struct {
	from string
	f    *framer
	enc  Encoder
	out  []AACFrame
}

// NewToAAC returns a ToAAC for input at inRate Hz with inChannels; cfg's
// Channels (0: the input's), Bitrate, AACOptions and MaxGap apply.
func NewToAAC(cfg Config, inRate, inChannels int) (*ToAAC, error) {
	if cfg.Channels == 0 {
		cfg.Channels = inChannels
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000 * cfg.Channels
	}
	if cfg.AACOptions == "" {
		cfg.AACOptions = DefaultAACOptions
	}
	f, err := newFramer(inRate, inChannels, SampleRate, cfg.Channels, SamplesPerFrame, cfg.MaxGap)
	if err != nil {
		return nil, err
	}
	var enc Encoder
	if cfg.NewEncoder != nil {
		enc, err = cfg.NewEncoder(cfg.Channels, cfg.Bitrate)
	} else {
		enc, err = NewFFmpegEncoder(cfg.Channels, cfg.Bitrate, cfg.AACOptions)
	}
	if err != nil {
		f.close()
		return nil, fmt.Errorf("transcode: %w", err)
	}
	if cfg.From == "" {
		cfg.From = "g711"
	}
	totals.start(cfg.From, "aac")
	return &ToAAC{from: cfg.From, f: f, enc: enc}, nil
}

// Encoder is the AAC encoder, for its Config and Delay.
func (t *ToAAC) Encoder() Encoder { return t.enc }

// Push encodes pcm whose first sample is at ts (48 kHz ticks) and returns
// the access units it finishes (reused by the next call).
func (t *ToAAC) Push(pcm []float32, ts int64) ([]AACFrame, error) {
	if t.f == nil {
		return nil, ErrClosed
	}
	t.out = t.out[:0]
	err := t.f.push(pcm, ts, func(frame []float32, ts int64) error {
		before := len(t.out)
		var err error
		t.out, err = t.enc.Encode(t.out, frame, ts)
		totals.frames.Add(uint64(len(t.out) - before))
		if err != nil {
			totals.errors.Add(1)
			return fmt.Errorf("transcode: %w", err)
		}
		return nil
	})
	return t.out, err
}

// Close frees the codecs; it may be called more than once.
func (t *ToAAC) Close() {
	if t.f != nil {
		t.enc.Close()
		t.f.close()
		t.f = nil
		totals.stop(t.from, "aac")
	}
}
