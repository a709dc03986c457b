//go:build cgo

package snapshot

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "clibs.h"
*/
import "C"

import (
	"fmt"
	"sync"
	"unsafe"
)

var (
	loadOnce sync.Once
	loadErr  error
)

// Available reports whether this binary can make snapshots; the error,
// which wraps ErrUnavailable, says why not. It loads libavcodec on its
// first call.
func Available() error {
	loadOnce.Do(func() {
		if msg := C.sn_load(); msg != nil {
			loadErr = fmt.Errorf("%w: %s (install FFmpeg's libavcodec; on Debian 12 libavcodec59, and libavcodec-dev to build)", ErrUnavailable, C.GoString(msg))
		}
	})
	return loadErr
}

// avPadding is FFmpeg's AV_INPUT_BUFFER_PADDING_SIZE: zeroed bytes the
// decoder may read past the end of its input.
const avPadding = 64

// encodeJPEG decodes one Annex-B keyframe access unit and encodes it as
// JPEG.
func encodeJPEG(h265 bool, annexB []byte, quality int) (jpeg []byte, width, height int, err error) {
	if err := Available(); err != nil {
		return nil, 0, 0, err
	}
	in := C.malloc(C.size_t(len(annexB) + avPadding))
	defer C.free(in)
	buf := unsafe.Slice((*byte)(in), len(annexB)+avPadding)
	copy(buf, annexB)
	clear(buf[len(annexB):])
	codec := C.int(C.SN_H264)
	if h265 {
		codec = C.SN_H265
	}
	var out *C.uint8_t
	var n, w, h C.int
	var msg [256]C.char
	if ret := C.sn_jpeg(codec, (*C.uint8_t)(in), C.int(len(annexB)), C.int(quality), &out, &n, &w, &h, &msg[0], C.size_t(len(msg))); ret != 0 {
		return nil, 0, 0, fmt.Errorf("%w: %s", ErrDecode, C.GoString(&msg[0]))
	}
	defer C.sn_free(unsafe.Pointer(out))
	return C.GoBytes(unsafe.Pointer(out), n), int(w), int(h), nil
}
