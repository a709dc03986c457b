//go:build cgo

package transcode

/*
#include <stdlib.h>
#include "clibs.h"
*/
import "C"

import (
	"fmt"
	"runtime"
)

// OpusEncoder is libopus's encoder: 20 ms of interleaved float samples in,
// one Opus packet out. It is used by one goroutine.
type OpusEncoder struct {
	p        *C.sl_opusenc
	channels int
	buf      []byte
	cleanup  runtime.Cleanup
}

// NewOpusEncoder returns libopus's encoder for rate (8000, 12000, 16000,
// 24000 or 48000 Hz: libopus resamples itself, RFC 7587 §4.1 keeps the RTP
// clock at 48 kHz) with 1 or 2 channels, bitrate bit/s, and complexity
// 0..10 (-1: libopus's default).
func NewOpusEncoder(rate, channels, bitrate, complexity int) (*OpusEncoder, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("opus encoder: %d channels (allowed 1 or 2)", channels)
	}
	return newOpusEnc(rate, channels, bitrate, complexity, 0, false)
}

func newOpusEnc(rate, channels, bitrate, complexity, lossPercent int, dtx bool) (*OpusEncoder, error) {
	d := 0
	if dtx {
		d = 1
	}
	var cerr C.int
	p := C.sl_opusenc_new(C.int(rate), C.int(channels), C.int(bitrate), C.int(complexity), C.int(lossPercent), C.int(d), &cerr)
	if p == nil {
		return nil, opusError("encoder", cerr)
	}
	e := &OpusEncoder{p: p, channels: channels, buf: make([]byte, 4000)}
	e.cleanup = runtime.AddCleanup(e, func(p *C.sl_opusenc) { C.sl_opusenc_free(p) }, p)
	return e, nil
}

// Encode encodes one frame of interleaved samples (2.5 to 60 ms) into a
// packet of its own.
func (e *OpusEncoder) Encode(pcm []float32) ([]byte, error) {
	if e.p == nil {
		return nil, ErrClosed
	}
	n := C.sl_opusenc_encode(e.p, cFloats(pcm), C.int(len(pcm)/e.channels), cBytes(e.buf), C.int(len(e.buf)))
	runtime.KeepAlive(pcm)
	if n < 0 {
		return nil, opusError("encode", n)
	}
	return append([]byte(nil), e.buf[:n]...), nil
}

// Lookahead is the encoder's delay in samples at its rate: a decoder's
// sample i is the input's sample i-Lookahead.
func (e *OpusEncoder) Lookahead() int {
	if e.p == nil {
		return 0
	}
	return int(C.sl_opusenc_lookahead(e.p))
}

// Close frees the encoder; it may be called more than once.
func (e *OpusEncoder) Close() {
	if e.p != nil {
		e.cleanup.Stop()
		C.sl_opusenc_free(e.p)
		e.p = nil
	}
}

// AACDecoder is libavcodec's AAC decoder. It is used by one goroutine.
type AACDecoder struct {
	p       *C.sl_aacdec
	pcm     []float32
	cleanup runtime.Cleanup
}

// NewAACDecoder returns libavcodec's AAC decoder for access units
// described by the AudioSpecificConfig asc (ISO 14496-3 §1.6.2.1).
func NewAACDecoder(asc []byte) (*AACDecoder, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if len(asc) == 0 {
		return nil, fmt.Errorf("aac decoder: no AudioSpecificConfig")
	}
	var p *C.sl_aacdec
	if ret := C.sl_aacdec_new(&p, cBytes(asc), C.int(len(asc))); ret < 0 {
		return nil, averror("aac decoder", ret)
	}
	d := &AACDecoder{p: p, pcm: make([]float32, 8*2048)}
	d.cleanup = runtime.AddCleanup(d, func(p *C.sl_aacdec) { C.sl_aacdec_free(p) }, p)
	return d, nil
}

// Decode decodes one access unit (raw, no ADTS); it returns interleaved
// samples (valid until the next call) and their channel count, or no
// samples where the decoder needs more input.
func (d *AACDecoder) Decode(au []byte) ([]float32, int, error) {
	if d.p == nil {
		return nil, 0, ErrClosed
	}
	var samples, channels C.int
	ret := C.sl_aacdec_decode(d.p, cBytes(au), C.int(len(au)), cFloats(d.pcm), C.int(len(d.pcm)), &samples, &channels)
	runtime.KeepAlive(au)
	switch {
	case ret == C.SL_AGAIN:
		return nil, 0, nil
	case ret < 0:
		return nil, 0, averror("aac decode", ret)
	}
	return d.pcm[:int(samples)*int(channels)], int(channels), nil
}

// Close frees the decoder; it may be called more than once.
func (d *AACDecoder) Close() {
	if d.p != nil {
		d.cleanup.Stop()
		C.sl_aacdec_free(d.p)
		d.p = nil
	}
}

// Resampler is libswresample converting interleaved float samples from one
// rate to another. It is used by one goroutine.
type Resampler struct {
	p               *C.sl_swr
	inRate, outRate int
	channels        int
	cleanup         runtime.Cleanup
}

// NewResampler returns a resampler from inRate to outRate Hz for 1 or 2
// channels.
func NewResampler(inRate, outRate, channels int) (*Resampler, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("resampler: %d channels (allowed 1 or 2)", channels)
	}
	var p *C.sl_swr
	if ret := C.sl_swr_new(&p, C.int(inRate), C.int(outRate), C.int(channels)); ret < 0 {
		return nil, averror("swresample", ret)
	}
	r := &Resampler{p: p, inRate: inRate, outRate: outRate, channels: channels}
	r.cleanup = runtime.AddCleanup(r, func(p *C.sl_swr) { C.sl_swr_free(p) }, p)
	return r, nil
}

// Convert resamples pcm and appends the output to dst.
func (r *Resampler) Convert(dst, pcm []float32) ([]float32, error) {
	if r.p == nil {
		return dst, ErrClosed
	}
	in := len(pcm) / r.channels
	cap := (in*r.outRate)/r.inRate + 64
	start := len(dst)
	dst = append(dst, make([]float32, cap*r.channels)...)
	n := C.sl_swr_convert(r.p, cFloats(pcm), C.int(in), cFloats(dst[start:]), C.int(cap))
	runtime.KeepAlive(pcm)
	if n < 0 {
		return dst[:start], averror("swresample", n)
	}
	return dst[:start+int(n)*r.channels], nil
}

// Delay is the resampler's delay in output samples.
func (r *Resampler) Delay() int {
	if r.p == nil {
		return 0
	}
	return int(C.sl_swr_delay(r.p, C.int(r.outRate)))
}

// Close frees the resampler; it may be called more than once.
func (r *Resampler) Close() {
	if r.p != nil {
		r.cleanup.Stop()
		C.sl_swr_free(r.p)
		r.p = nil
	}
}
