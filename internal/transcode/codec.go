// Package transcode turns a stream's audio from one codec into another,
// for the consumers that cannot take it as published: Opus into AAC-LC
// access units for LL-HLS and MP4 recordings (Transcoder: libopus decodes,
// with its loss concealment and in-band FEC, FFmpeg's native AAC encoder
// encodes), and decoded AAC or G.711 into Opus packets for WebRTC viewers
// (ToOpus) or into AAC (ToAAC). It owns the codec libraries: libopus,
// libavcodec (AAC encoder and decoder) and libswresample (where an encoder
// cannot take the input's rate); G.711 is a table look-up.
//
// The libraries are opened at run time (dlopen), so sluice builds and runs
// without them; Available says whether this binary can transcode. A
// consumer that needs another codec creates a transcoder when it starts
// and closes it when it stops, so nothing is decoded while none needs it
// (internal/tap shares them per stream).
package transcode

import (
	"errors"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

// SampleRate is the rate of every transcoder's audio: 48 kHz is Opus's
// decoding rate and its RTP clock rate (RFC 7587 §4.1), so PTS count both
// samples and RTP timestamp ticks.
const SampleRate = 48000

// SamplesPerFrame is the length of one AAC-LC access unit in samples per
// channel (ISO 14496-3 §4.5.2.1, frameLengthFlag 0).
const SamplesPerFrame = 1024

// maxOpusSamples is the longest Opus packet, 120 ms (RFC 6716 §3.2.5).
const maxOpusSamples = SampleRate * 120 / 1000

var (
	// ErrUnavailable is wrapped by every error that says this binary cannot
	// transcode: built without cgo or libavcodec's headers, or libopus /
	// libavcodec missing at run time.
	ErrUnavailable = errors.New("audio transcoding unavailable")
	// ErrClosed is returned by a Transcoder used after Flush or Close.
	ErrClosed = errors.New("transcoder closed")
)

// AACFrame is one AAC-LC access unit: a raw_data_block without ADTS
// header, as MP4 and LL-HLS (fMP4) muxers take it.
type AACFrame struct {
	// PTS is the time of the access unit's first sample in 1/48000 s on
	// the Transcoder's input timeline (0 is the RTP timestamp of the
	// first packet pushed). Consecutive frames are exactly
	// SamplesPerFrame apart. Because of the encoder's delay the first
	// frame starts at -Delay: decoders output that priming and muxers
	// trim it (an MP4 edit list), or add Delay to every PTS.
	PTS     int64
	Payload []byte
}

// Decoder decodes Opus packets to interleaved float32 samples at 48 kHz,
// with the channel count it was made for (mixing the packets' own count up
// or down). libopus implements it; a pure Go decoder could.
type Decoder interface {
	// Decode decodes packet into pcm and returns the samples per channel
	// it wrote; pcm must hold maxOpusSamples per channel. With packet
	// nil it conceals the loss of len(pcm)/channels samples (a multiple
	// of 2.5 ms). With fec it decodes the in-band FEC copy that packet
	// carries of the packet before it, len(pcm)/channels samples long,
	// concealing instead where the copy is missing.
	Decode(packet []byte, fec bool, pcm []float32) (int, error)
	Close()
}

// Encoder encodes interleaved float32 samples at 48 kHz to AAC-LC access
// units. FFmpeg's AAC encoder implements it; another (fdk-aac, a hardware
// encoder) can replace it through Config.NewEncoder.
type Encoder interface {
	// Encode encodes SamplesPerFrame samples per channel (fewer only in
	// the last call), the first at pts, and appends the access units it
	// finishes to dst. pcm nil drains the encoder, after which it takes
	// no more samples.
	Encode(dst []AACFrame, pcm []float32, pts int64) ([]AACFrame, error)
	// Config is the AudioSpecificConfig of the access units.
	Config() mpeg4audio.AudioSpecificConfig
	// Delay is the encoder's priming in samples: the first access unit
	// starts Delay samples before the first sample given.
	Delay() int
	Close()
}
