//go:build !cgo

package transcode

import "fmt"

// Available reports whether this binary can transcode; the error, which
// wraps ErrUnavailable, says why not.
func Available() error {
	return fmt.Errorf("%w: built without cgo (CGO_ENABLED=0)", ErrUnavailable)
}

// NewOpusDecoder needs cgo; see Available.
func NewOpusDecoder(channels int) (Decoder, error) { return nil, Available() }

// NewFFmpegEncoder needs cgo; see Available.
func NewFFmpegEncoder(channels, bitrate int, options string) (Encoder, error) {
	return nil, Available()
}

// NewOpusEncoder needs cgo; see Available.
func NewOpusEncoder(rate, channels, bitrate, complexity int) (*OpusEncoder, error) {
	return nil, Available()
}

// OpusEncoder is libopus's encoder (cgo only).
type OpusEncoder struct{}

// Encode needs cgo.
func (e *OpusEncoder) Encode(pcm []float32) ([]byte, error) { return nil, Available() }

// Lookahead needs cgo.
func (e *OpusEncoder) Lookahead() int { return 0 }

// Close does nothing.
func (e *OpusEncoder) Close() {}

// NewAACDecoder needs cgo; see Available.
func NewAACDecoder(asc []byte) (*AACDecoder, error) { return nil, Available() }

// AACDecoder is libavcodec's AAC decoder (cgo only).
type AACDecoder struct{}

// Decode needs cgo.
func (d *AACDecoder) Decode(au []byte) ([]float32, int, error) { return nil, 0, Available() }

// Close does nothing.
func (d *AACDecoder) Close() {}

// NewResampler needs cgo; see Available.
func NewResampler(inRate, outRate, channels int) (*Resampler, error) { return nil, Available() }

// Resampler is libswresample (cgo only).
type Resampler struct{}

// Convert needs cgo.
func (r *Resampler) Convert(dst, pcm []float32) ([]float32, error) { return dst, Available() }

// Delay needs cgo.
func (r *Resampler) Delay() int { return 0 }

// Close does nothing.
func (r *Resampler) Close() {}

func newOpusEnc(rate, channels, bitrate, complexity, lossPercent int, dtx bool) (*OpusEncoder, error) {
	return nil, Available()
}
