package transcode

// The tests' codec helpers, over the exported encoder and decoder.

type opusEncoder struct{ *OpusEncoder }

func newOpusEncoder(channels, bitrate, lossPercent int, dtx bool) (*opusEncoder, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	e, err := newOpusEnc(SampleRate, channels, bitrate, -1, lossPercent, dtx)
	if err != nil {
		return nil, err
	}
	return &opusEncoder{e}, nil
}

func (e *opusEncoder) encode(pcm []float32) ([]byte, error) { return e.Encode(pcm) }
func (e *opusEncoder) close()                               { e.Close() }

type aacDecoder struct{ *AACDecoder }

func newAACDecoder(asc []byte) (*aacDecoder, error) {
	d, err := NewAACDecoder(asc)
	if err != nil {
		return nil, err
	}
	return &aacDecoder{d}, nil
}

func (d *aacDecoder) decode(au []byte) ([]float32, int, error) { return d.Decode(au) }
func (d *aacDecoder) close()                                   { d.Close() }
