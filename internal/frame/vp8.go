package frame

import (
	"strconv"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// VP8 rebuilds VP8 frames from RFC 7741 payloads. A frame begins with a
// packet whose descriptor has S=1 and partition index 0, and ends with the
// marker bit.
type VP8 struct {
	base

	inFrame bool
	ts      uint32
	first   []byte // the first packet's VP8 payload
	buf     []byte // the frame when it spans several packets
	key     bool
	broken  bool
	waitKey bool

	info    media.VideoInfo
	hasInfo bool
}

// NewVP8 returns a VP8 depacketizer without wall clock, for track 0.
func NewVP8() *VP8 { return &VP8{base: base{clockRate: 90000}} }

// vp8Descriptor parses the RFC 7741 §4.2 payload descriptor: whether the
// packet starts a frame (S=1, PID=0) and where the VP8 payload begins.
func vp8Descriptor(p []byte) (start bool, off int, ok bool) {
	if len(p) < 1 {
		return false, 0, false
	}
	b0 := p[0]
	off = 1
	if b0&0x80 != 0 { // X
		if len(p) < 2 {
			return false, 0, false
		}
		x := p[1]
		off++
		if x&0x80 != 0 { // I: 7- or 15-bit picture ID
			if len(p) <= off {
				return false, 0, false
			}
			if p[off]&0x80 != 0 {
				off++
			}
			off++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			off++
		}
		if x&0x30 != 0 { // T or K: TID/Y/KEYIDX
			off++
		}
	}
	if off >= len(p) {
		return false, 0, false
	}
	return b0&0x10 != 0 && b0&0x07 == 0, off, true
}

// Push implements Depacketizer.
func (d *VP8) Push(p *hub.Packet) (*media.Frame, bool) {
	var out *media.Frame
	contiguous := d.follows(p)
	if d.inFrame && p.Timestamp != d.ts {
		out = d.finish()
	}
	if !contiguous {
		d.waitKey = true
		if d.inFrame {
			d.broken = true
		}
	}
	start, off, ok := vp8Descriptor(p.Payload)
	switch {
	case !ok:
		if d.inFrame {
			d.broken = true
		}
	case start:
		if d.inFrame { // a new frame with the same timestamp: the old one is cut short
			d.broken = true
			if f := d.finish(); out == nil {
				out = f
			}
		}
		d.inFrame, d.ts, d.broken, d.buf = true, p.Timestamp, false, nil
		d.first = p.Payload[off:]
		// RFC 6386 §9.1: the frame tag's P bit is 0 in key frames.
		d.key = d.first[0]&0x01 == 0
		if d.key {
			d.sniff(d.first)
		}
	case d.inFrame && !d.broken:
		data := p.Payload[off:]
		if d.buf == nil {
			d.buf = make([]byte, 0, 2*(len(d.first)+len(data)))
			d.buf = append(d.buf, d.first...)
		}
		if len(d.buf)+len(data) > maxFrameBytes {
			d.broken = true
			break
		}
		d.buf = append(d.buf, data...)
	}
	if p.Marker && d.inFrame {
		if f := d.finish(); out == nil {
			out = f
		}
	}
	return out, out != nil
}

func (d *VP8) finish() *media.Frame {
	d.inFrame = false
	if d.broken || (d.waitKey && !d.key) {
		return nil
	}
	d.waitKey = false
	f := d.newFrame(d.ts, d.key)
	f.Payload = d.first
	if d.buf != nil {
		f.Payload = d.buf
	}
	d.first, d.buf = nil, nil
	return f
}

// sniff reads the key frame header (RFC 6386 §9.1): frame tag, start code
// 9d 01 2a, then 14-bit width and height.
func (d *VP8) sniff(b []byte) {
	if info, ok := vp8Info(b); ok {
		d.info, d.hasInfo = info, true
	}
}

func vp8Info(b []byte) (media.VideoInfo, bool) {
	if len(b) < 10 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return media.VideoInfo{}, false
	}
	return media.VideoInfo{
		Width:   int(b[6]) | int(b[7]&0x3f)<<8,
		Height:  int(b[8]) | int(b[9]&0x3f)<<8,
		Profile: strconv.Itoa(int(b[0] >> 1 & 0x07)),
	}, true
}

// VideoInfo implements VideoInfoer.
func (d *VP8) VideoInfo() (media.VideoInfo, bool) { return d.info, d.hasInfo }
