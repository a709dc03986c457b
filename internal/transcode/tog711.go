package transcode

import (
	"fmt"
	"time"
)

// G711Rate is G.711's sample rate and RTP clock rate (RFC 3551 §4.5.14).
const G711Rate = 8000

// G711Config says what a ToG711 makes.
type G711Config struct {
	// Mulaw makes μ-law (PCMU); false, A-law (PCMA).
	Mulaw bool
	// MaxGap is the longest timestamp gap filled with silence (0: 10 s).
	MaxGap time.Duration
	// From names the source codec in Counts ("": "pcm").
	From string
}

// G711Packet is one 20 ms G.711 packet of a ToG711: 160 bytes.
type G711Packet struct {
	// TS is the time of its first sample in 8 kHz ticks on the input's
	// timeline.
	TS      int64
	Payload []byte
}

// ToG711 encodes decoded audio (Opus) to G.711 at 8 kHz mono in 20 ms
// packets, for WebRTC viewers whose offer has only PCMU or PCMA, on the
// input's timeline. It is used by one goroutine; Close frees the
// resampler.
type ToG711 struct {
	from, to string
	mulaw    bool
	f        *framer
	out      []G711Packet
}

// NewToG711 returns a ToG711 for input at inRate Hz with inChannels (1 or
// 2, mixed to mono); its error wraps ErrUnavailable where this binary
// cannot resample.
func NewToG711(cfg G711Config, inRate, inChannels int) (*ToG711, error) {
	f, err := newFramer(inRate, inChannels, G711Rate, 1, G711Rate/50, cfg.MaxGap)
	if err != nil {
		return nil, err
	}
	if cfg.From == "" {
		cfg.From = "pcm"
	}
	to := "pcma"
	if cfg.Mulaw {
		to = "pcmu"
	}
	totals.start(cfg.From, to)
	return &ToG711{from: cfg.From, to: to, mulaw: cfg.Mulaw, f: f}, nil
}

// Push encodes pcm (interleaved, the input's channels and rate) whose
// first sample is at ts (48 kHz ticks) and returns the packets it
// finishes; the slice is reused by the next call, the payloads are the
// caller's.
func (t *ToG711) Push(pcm []float32, ts int64) ([]G711Packet, error) {
	if t.f == nil {
		return nil, ErrClosed
	}
	t.out = t.out[:0]
	err := t.f.push(pcm, ts, func(frame []float32, ts int64) error {
		t.out = append(t.out, G711Packet{TS: floorDiv(ts, SampleRate/G711Rate), Payload: EncodeG711(make([]byte, 0, len(frame)), frame, t.mulaw)})
		return nil
	})
	if err != nil {
		err = fmt.Errorf("transcode: %w", err)
	}
	return t.out, err
}

// Close frees the resampler; it may be called more than once.
func (t *ToG711) Close() {
	if t.f != nil {
		t.f.close()
		t.f = nil
		totals.stop(t.from, t.to)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
