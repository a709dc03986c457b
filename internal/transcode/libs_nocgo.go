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

// The test helpers' stand-ins: the tests that need them skip when
// Available fails.
type opusEncoder struct{}

func newOpusEncoder(channels, bitrate, lossPercent int, dtx bool) (*opusEncoder, error) {
	return nil, Available()
}
func (e *opusEncoder) encode(pcm []float32) ([]byte, error) { return nil, Available() }
func (e *opusEncoder) close()                               {}

type aacDecoder struct{}

func newAACDecoder(asc []byte) (*aacDecoder, error)            { return nil, Available() }
func (d *aacDecoder) decode(au []byte) ([]float32, int, error) { return nil, 0, Available() }
func (d *aacDecoder) close()                                   {}
