package transcode

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// DefaultAACOptions are the FFmpeg AAC encoder options a Transcoder uses
// unless told otherwise: the "fast" coder, which costs about half of
// FFmpeg's default "twoloop", without the optional tools whose searches
// cost another fifth and buy little at 64 kbit/s per channel: perceptual
// noise substitution and intensity stereo (which replace a band's
// content by a parametric copy, for low bitrates), M/S stereo and TNS
// (see BenchmarkTranscode and BenchmarkAACEncode). Plain L/R AAC-LC at
// FFmpeg's 16 kHz cutoff for 128 kbit/s stereo is what remains.
const DefaultAACOptions = "aac_coder=fast:aac_pns=0:aac_is=0:aac_ms=0:aac_tns=0"

// Config says what a Transcoder makes. The zero value is valid: stereo,
// 128 kbit/s, FFmpeg's AAC encoder with DefaultAACOptions.
type Config struct {
	// Channels of the AAC output, 1 or 2 (0: 2). Take it from the
	// publisher's Opus fmtp with ChannelsFromFmtp; libopus mixes each
	// packet to this count.
	Channels int
	// Bitrate of the AAC output in bit/s (0: 64000 per channel).
	Bitrate int
	// AACOptions are the FFmpeg AAC encoder's options, "key=value:..."
	// (see NewFFmpegEncoder; "": DefaultAACOptions).
	AACOptions string
	// MaxConceal is the longest loss that libopus's PLC (or FEC) fills;
	// the rest of a longer loss is silence (0: 100 ms).
	MaxConceal time.Duration
	// MaxGap is the longest timestamp gap that is filled, so that the
	// output stays on the input's timeline. A longer gap, or a timestamp
	// going backwards, is a discontinuity: the output goes on without a
	// hole and later frames sit that much off the input's timeline
	// (0: 10 s).
	MaxGap time.Duration

	// From names the source codec in Counts for a ToAAC ("": "g711");
	// a Transcoder's is Opus.
	From string

	// NewDecoder and NewEncoder replace libopus and FFmpeg (nil: those).
	NewDecoder func(channels int) (Decoder, error)
	NewEncoder func(channels, bitrate int) (Encoder, error)
}

// Stats counts what a Transcoder did with its input.
type Stats struct {
	Packets         uint64 // decoded packets
	Late            uint64 // packets older than one already pushed (dropped)
	Bad             uint64 // packets libopus could not decode (concealed)
	Lost            uint64 // packets missing from the sequence numbers
	Concealed       int64  // samples per channel made by PLC or FEC
	Silence         int64  // samples per channel of silence inserted (DTX, long losses)
	Discontinuities uint64 // gaps too long to fill, timestamps going backwards
	Frames          uint64 // AAC access units out
}

// Transcoder turns one Opus track into AAC-LC. It runs in its caller's
// goroutine and is not safe for concurrent use. Close frees the codecs.
type Transcoder struct {
	cfg   Config
	dec   Decoder
	enc   Encoder
	ch    int
	asc   mpeg4audio.AudioSpecificConfig
	delay int

	started   bool
	flushed   bool
	lastSeq   uint16
	nextTS    uint32 // RTP timestamp the next packet should have
	lastN     int    // samples per channel of the last decoded packet
	extraLost int    // undecodable packets since the last good one

	frame    []float32 // the access unit being filled, interleaved
	fill     int       // samples per channel in frame
	framePTS int64     // PTS of frame's first sample

	decBuf []float32
	out    []AACFrame
	stats  Stats
}

// New returns a Transcoder; its error wraps ErrUnavailable where this
// binary cannot transcode.
func New(cfg Config) (*Transcoder, error) {
	if cfg.Channels == 0 {
		cfg.Channels = 2
	}
	if cfg.Channels != 1 && cfg.Channels != 2 {
		return nil, fmt.Errorf("transcode: channels: %d (allowed 1 or 2)", cfg.Channels)
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 64000 * cfg.Channels
	}
	if cfg.Bitrate < 8000 || cfg.Bitrate > 320000*cfg.Channels {
		return nil, fmt.Errorf("transcode: bitrate: %d (allowed 8000..%d)", cfg.Bitrate, 320000*cfg.Channels)
	}
	if cfg.AACOptions == "" {
		cfg.AACOptions = DefaultAACOptions
	}
	if cfg.MaxConceal == 0 {
		cfg.MaxConceal = 100 * time.Millisecond
	}
	if cfg.MaxGap == 0 {
		cfg.MaxGap = 10 * time.Second
	}
	if cfg.NewDecoder == nil {
		cfg.NewDecoder = NewOpusDecoder
	}
	if cfg.NewEncoder == nil {
		opts := cfg.AACOptions
		cfg.NewEncoder = func(channels, bitrate int) (Encoder, error) {
			return NewFFmpegEncoder(channels, bitrate, opts)
		}
	}
	dec, err := cfg.NewDecoder(cfg.Channels)
	if err != nil {
		return nil, fmt.Errorf("transcode: %w", err)
	}
	enc, err := cfg.NewEncoder(cfg.Channels, cfg.Bitrate)
	if err != nil {
		dec.Close()
		return nil, fmt.Errorf("transcode: %w", err)
	}
	totals.start("opus", "aac")
	return &Transcoder{
		cfg:    cfg,
		dec:    dec,
		enc:    enc,
		ch:     cfg.Channels,
		asc:    enc.Config(),
		delay:  enc.Delay(),
		frame:  make([]float32, SamplesPerFrame*cfg.Channels),
		decBuf: make([]float32, maxOpusSamples*cfg.Channels),
	}, nil
}

// Config is the AudioSpecificConfig of the access units, for the muxers'
// init segments (MP4 esds, HLS).
func (t *Transcoder) Config() mpeg4audio.AudioSpecificConfig { return t.asc }

// Channels is the output's channel count.
func (t *Transcoder) Channels() int { return t.ch }

// Delay is the encoder's priming in samples (1024 for FFmpeg): the first
// access unit's PTS is -Delay.
func (t *Transcoder) Delay() int { return t.delay }

// Stats returns the counters so far.
func (t *Transcoder) Stats() Stats { return t.stats }

// Push decodes one Opus RTP payload (RFC 7587 §4.2: one Opus packet) with
// its RTP timestamp (48 kHz clock) and sequence number, and returns the
// access units finished by it: usually none or one. The slice is reused
// by the next call; the payloads are the caller's to keep.
//
// Packets must come in sequence order (the reorder window's job); an
// older one is dropped. Missing sequence numbers are losses, filled by
// libopus's FEC or PLC up to MaxConceal and silence beyond; a timestamp
// jump without missing sequence numbers is DTX (RFC 7587 §3.1.3),
// filled with silence. Either way the output's timestamps stay continuous
// and on the input's timeline. A payload libopus rejects counts as lost.
func (t *Transcoder) Push(payload []byte, rtpTS uint32, seq uint16) ([]AACFrame, error) {
	if t.flushed || t.dec == nil {
		return nil, ErrClosed
	}
	t.out = t.out[:0]
	if !t.started {
		t.started = true
		t.nextTS = rtpTS
		t.lastSeq = seq - 1
	}
	d := int16(seq - t.lastSeq)
	if d <= 0 {
		t.stats.Late++
		return t.out, nil
	}
	t.lastSeq = seq
	lost := int(d) - 1 + t.extraLost
	t.stats.Lost += uint64(d - 1)
	gap := int64(int32(rtpTS - t.nextTS))
	var err error
	switch {
	case gap < 0 || gap > t.cfg.MaxGap.Microseconds()*SampleRate/1e6:
		t.stats.Discontinuities++
	case gap > 0:
		err = t.fillGap(int(gap), lost, payload)
	}
	if err != nil {
		return t.out, err
	}

	n, derr := 0, error(nil)
	if len(payload) > 0 { // an empty one would ask libopus for PLC
		n, derr = t.dec.Decode(payload, false, t.decBuf)
	}
	if derr != nil || n == 0 {
		// The next packet's timestamp tells how much to conceal.
		t.stats.Bad++
		t.extraLost++
		t.nextTS = rtpTS
		return t.out, nil
	}
	t.stats.Packets++
	t.extraLost = 0
	t.lastN = n
	t.nextTS = rtpTS + uint32(n)
	return t.out, t.write(t.decBuf[:n*t.ch], n)
}

// fillGap fills gap samples before the packet next: concealment for the
// lost packets, silence for the rest (DTX, or a loss longer than
// MaxConceal).
func (t *Transcoder) fillGap(gap, lost int, next []byte) error {
	const step = SampleRate / 400 // PLC and FEC work in multiples of 2.5 ms
	conceal := 0
	if lost > 0 {
		per := t.lastN
		if per == 0 {
			per = SampleRate / 50
		}
		conceal = min(gap, lost*per, int(t.cfg.MaxConceal.Microseconds()*SampleRate/1e6))
		conceal -= conceal % step
	}
	silence := gap - conceal
	for left := conceal; left > 0; {
		// libopus's FEC recovers the packet just before next; use it for
		// the last chunk when no silence comes between.
		chunk := min(left, maxOpusSamples)
		if t.lastN > 0 {
			chunk = min(left, t.lastN)
		}
		fec := left == chunk && silence == 0 && len(next) > 0
		var pkt []byte
		if fec {
			pkt = next
		}
		n, err := t.dec.Decode(pkt, fec, t.decBuf[:chunk*t.ch])
		if fec && err != nil { // next is damaged: conceal instead
			n, err = t.dec.Decode(nil, false, t.decBuf[:chunk*t.ch])
		}
		if err != nil || n != chunk {
			// Concealment failed: what is left becomes silence.
			silence += left
			break
		}
		t.stats.Concealed += int64(n)
		if err := t.write(t.decBuf[:n*t.ch], n); err != nil {
			return err
		}
		left -= n
	}
	t.stats.Silence += int64(silence)
	return t.writeSilence(silence)
}

// write appends n samples per channel to the access unit being filled and
// encodes every one it completes.
func (t *Transcoder) write(pcm []float32, n int) error {
	for n > 0 {
		k := min(n, SamplesPerFrame-t.fill)
		copy(t.frame[t.fill*t.ch:], pcm[:k*t.ch])
		pcm = pcm[k*t.ch:]
		n -= k
		t.fill += k
		if err := t.encodeIfFull(); err != nil {
			return err
		}
	}
	return nil
}

func (t *Transcoder) writeSilence(n int) error {
	for n > 0 {
		k := min(n, SamplesPerFrame-t.fill)
		clear(t.frame[t.fill*t.ch : (t.fill+k)*t.ch])
		n -= k
		t.fill += k
		if err := t.encodeIfFull(); err != nil {
			return err
		}
	}
	return nil
}

func (t *Transcoder) encodeIfFull() error {
	if t.fill < SamplesPerFrame {
		return nil
	}
	before := len(t.out)
	var err error
	t.out, err = t.enc.Encode(t.out, t.frame, t.framePTS)
	t.stats.Frames += uint64(len(t.out) - before)
	totals.frames.Add(uint64(len(t.out) - before))
	t.fill = 0
	t.framePTS += SamplesPerFrame
	if err != nil {
		totals.errors.Add(1)
		return fmt.Errorf("transcode: %w", err)
	}
	return nil
}

// Flush encodes the samples still buffered and drains the encoder,
// returning the last access units; the Transcoder takes no more packets.
func (t *Transcoder) Flush() ([]AACFrame, error) {
	if t.flushed || t.dec == nil {
		return nil, ErrClosed
	}
	t.flushed = true
	t.out = t.out[:0]
	var err error
	if t.fill > 0 {
		t.out, err = t.enc.Encode(t.out, t.frame[:t.fill*t.ch], t.framePTS)
		if err != nil {
			return t.out, fmt.Errorf("transcode: %w", err)
		}
		t.fill = 0
	}
	t.out, err = t.enc.Encode(t.out, nil, 0)
	t.stats.Frames += uint64(len(t.out))
	totals.frames.Add(uint64(len(t.out)))
	if err != nil {
		return t.out, fmt.Errorf("transcode: %w", err)
	}
	return t.out, nil
}

// Close frees the codecs. It may be called more than once.
func (t *Transcoder) Close() {
	if t.dec != nil {
		t.dec.Close()
		t.enc.Close()
		t.dec, t.enc = nil, nil
		totals.stop("opus", "aac")
	}
}

// totals count what every Transcoder of the process does, for the
// metrics: the codecs are a process-wide resource.
type totalsT struct {
	running    atomic.Int64
	frames     atomic.Uint64 // AAC access units
	opusFrames atomic.Uint64 // 20 ms Opus packets
	errors     atomic.Uint64

	mu          sync.Mutex
	byDirection map[Direction]int
}

var totals totalsT

// Direction is a kind of transcoder: source codec to output codec, in
// lower case ("opus"→"aac", "aac"→"opus", "pcma"→"opus"...).
type Direction struct{ From, To string }

func (t *totalsT) start(from, to string) {
	t.running.Add(1)
	t.mu.Lock()
	if t.byDirection == nil {
		t.byDirection = map[Direction]int{}
	}
	t.byDirection[Direction{from, to}]++
	t.mu.Unlock()
}

func (t *totalsT) stop(from, to string) {
	t.running.Add(-1)
	t.mu.Lock()
	t.byDirection[Direction{from, to}]--
	t.mu.Unlock()
}

// Totals is what the process's Transcoders did, as Counts reports it.
type Totals struct {
	// Running is the number of transcoders (Transcoder, ToOpus, ToAAC)
	// made and not yet closed.
	Running int
	// ByDirection is Running by source and output codec.
	ByDirection map[Direction]int
	// AudioSeconds is the audio encoded to AAC, in seconds per channel.
	AudioSeconds float64
	// OpusSeconds is the audio encoded to Opus.
	OpusSeconds float64
	// Errors counts encoder failures (each ends its transcoder's audio).
	Errors uint64
}

// Counts returns the process-wide totals; cheap enough for every scrape.
func Counts() Totals {
	totals.mu.Lock()
	by := make(map[Direction]int, len(totals.byDirection))
	for d, n := range totals.byDirection {
		by[d] = n
	}
	totals.mu.Unlock()
	return Totals{
		ByDirection:  by,
		Running:      int(totals.running.Load()),
		AudioSeconds: float64(totals.frames.Load()) * SamplesPerFrame / SampleRate,
		OpusSeconds:  float64(totals.opusFrames.Load()) / 50,
		Errors:       totals.errors.Load(),
	}
}
