//go:build cgo

package transcode

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "clibs.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"unsafe"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// Available reports whether this binary can transcode; the error, which
// wraps ErrUnavailable, says why not. It loads libopus, libavcodec and
// libswresample on its first call.
func Available() error {
	loadOnce.Do(func() {
		if msg := C.sl_load(); msg != nil {
			loadErr = fmt.Errorf("%w: %s", ErrUnavailable, C.GoString(msg))
			switch {
			case C.sl_have_avcodec_headers() != 0:
				loadErr = fmt.Errorf("%w (install libopus and FFmpeg's libavcodec and libswresample; on Debian 12 libopus0, libavcodec59, libswresample4)", loadErr)
			case avcodecHeadersInstalled():
				// Go's build cache does not notice headers installed
				// after the package was built.
				loadErr = fmt.Errorf("%w; they are installed now: run `go clean -cache` and rebuild", loadErr)
			default:
				loadErr = fmt.Errorf("%w: install libavcodec-dev and libswresample-dev and rebuild", loadErr)
			}
		}
	})
	return loadErr
}

func avcodecHeadersInstalled() bool {
	found := func(h string) bool {
		for _, dir := range []string{"/usr/include/", "/usr/include/x86_64-linux-gnu/", "/usr/include/aarch64-linux-gnu/"} {
			if _, err := os.Stat(dir + h); err == nil {
				return true
			}
		}
		return false
	}
	return found("libavcodec/avcodec.h") && found("libswresample/swresample.h")
}

func averror(op string, ret C.int) error {
	var buf [128]C.char
	C.sl_averror(ret, &buf[0], C.size_t(len(buf)))
	return fmt.Errorf("libavcodec %s: %s", op, C.GoString(&buf[0]))
}

func opusError(op string, ret C.int) error {
	return fmt.Errorf("libopus %s: %s", op, C.GoString(C.sl_opus_strerror(ret)))
}

func cBytes(b []byte) *C.uchar {
	if len(b) == 0 {
		return nil
	}
	return (*C.uchar)(unsafe.Pointer(&b[0]))
}

func cFloats(f []float32) *C.float {
	if len(f) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&f[0]))
}

// opusDecoder is libopus's decoder.
type opusDecoder struct {
	p        *C.sl_opusdec
	channels int
	cleanup  runtime.Cleanup
}

// NewOpusDecoder returns libopus's decoder for 48 kHz output with 1 or 2
// channels.
func NewOpusDecoder(channels int) (Decoder, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("opus decoder: %d channels (allowed 1 or 2)", channels)
	}
	var cerr C.int
	p := C.sl_opusdec_new(C.int(channels), &cerr)
	if p == nil {
		return nil, opusError("decoder", cerr)
	}
	d := &opusDecoder{p: p, channels: channels}
	d.cleanup = runtime.AddCleanup(d, func(p *C.sl_opusdec) { C.sl_opusdec_free(p) }, p)
	return d, nil
}

func (d *opusDecoder) Decode(packet []byte, fec bool, pcm []float32) (int, error) {
	if d.p == nil {
		return 0, ErrClosed
	}
	if packet != nil && len(packet) == 0 {
		return 0, errors.New("libopus decode: empty packet")
	}
	f := 0
	if fec {
		f = 1
	}
	n := C.sl_opusdec_decode(d.p, cBytes(packet), C.int(len(packet)), cFloats(pcm), C.int(len(pcm)/d.channels), C.int(f))
	runtime.KeepAlive(packet)
	runtime.KeepAlive(pcm)
	if n < 0 {
		return 0, opusError("decode", n)
	}
	return int(n), nil
}

func (d *opusDecoder) Close() {
	if d.p != nil {
		d.cleanup.Stop()
		C.sl_opusdec_free(d.p)
		d.p = nil
	}
}

// ffmpegEncoder is FFmpeg's native AAC encoder.
type ffmpegEncoder struct {
	p        *C.sl_aacenc
	channels int
	config   mpeg4audio.AudioSpecificConfig
	delay    int
	buf      []byte
	cleanup  runtime.Cleanup
}

// NewFFmpegEncoder returns FFmpeg's native AAC-LC encoder for 48 kHz with
// 1 or 2 channels at bitrate bits per second. options are its AVOptions
// as "key=value:key=value" (`ffmpeg -h encoder=aac` lists them), e.g.
// "aac_coder=fast"; an option it does not know is an error.
func NewFFmpegEncoder(channels, bitrate int, options string) (Encoder, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("aac encoder: %d channels (allowed 1 or 2)", channels)
	}
	copts := C.CString(options)
	defer C.free(unsafe.Pointer(copts))
	var p *C.sl_aacenc
	if ret := C.sl_aacenc_new(&p, C.int(channels), SampleRate, C.int(bitrate), copts); ret < 0 {
		return nil, averror(fmt.Sprintf("aac encoder (options %q)", options), ret)
	}
	e := &ffmpegEncoder{p: p, channels: channels, buf: make([]byte, 8192)}
	e.cleanup = runtime.AddCleanup(e, func(p *C.sl_aacenc) { C.sl_aacenc_free(p) }, p)
	if fs := int(C.sl_aacenc_frame_size(p)); fs != SamplesPerFrame {
		e.Close()
		return nil, fmt.Errorf("aac encoder: frame size %d, want %d", fs, SamplesPerFrame)
	}
	e.delay = int(C.sl_aacenc_delay(p))
	var data *C.uchar
	n := C.sl_aacenc_extradata(p, &data)
	asc := C.GoBytes(unsafe.Pointer(data), n)
	if err := e.config.Unmarshal(asc); err != nil {
		e.Close()
		return nil, fmt.Errorf("aac encoder: its AudioSpecificConfig %x: %w", asc, err)
	}
	return e, nil
}

func (e *ffmpegEncoder) Config() mpeg4audio.AudioSpecificConfig { return e.config }

func (e *ffmpegEncoder) Delay() int { return e.delay }

func (e *ffmpegEncoder) Encode(dst []AACFrame, pcm []float32, pts int64) ([]AACFrame, error) {
	if e.p == nil {
		return dst, ErrClosed
	}
	var ret C.int
	if pcm == nil {
		ret = C.sl_aacenc_send(e.p, nil, 0, 0)
	} else {
		ret = C.sl_aacenc_send(e.p, cFloats(pcm), C.int(len(pcm)/e.channels), C.int64_t(pts))
		runtime.KeepAlive(pcm)
	}
	if ret < 0 {
		return dst, averror("aac encode", ret)
	}
	for {
		var size C.int
		var apts C.int64_t
		ret := C.sl_aacenc_receive(e.p, cBytes(e.buf), C.int(len(e.buf)), &size, &apts)
		switch {
		case ret == C.SL_AGAIN || ret == C.SL_EOF:
			return dst, nil
		case ret < 0:
			return dst, averror("aac encode", ret)
		}
		dst = append(dst, AACFrame{PTS: int64(apts), Payload: append([]byte(nil), e.buf[:size]...)})
	}
}

func (e *ffmpegEncoder) Close() {
	if e.p != nil {
		e.cleanup.Stop()
		C.sl_aacenc_free(e.p)
		e.p = nil
	}
}
