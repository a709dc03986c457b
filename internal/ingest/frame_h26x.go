// The frame writer's H264/H265 parameter sets: kept from out of band and
// in band, put before keyframes that lack them.

package ingest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/sluice-media/sluice/internal/media"
)

// Parameter set slots: the index of a VPS, SPS or PPS in paramSets.sets.
const (
	slotVPS = iota
	slotSPS
	slotPPS
	noSlot = -1
)

// nalCodec is what differs between H264 (ITU-T H.264 Table 7-1) and H265
// (ITU-T H.265 Table 7-1) for the frame writer.
type nalCodec interface {
	// slot says which parameter set nalu is, or noSlot.
	slot(nalu []byte) int
	// vcl reports whether nalu is a slice, and key whether it is one of
	// a random access picture (H264 IDR, H265 IRAP).
	vcl(nalu []byte) (vcl, key bool)
	// needs lists the slots a keyframe needs in band.
	needs() []int
	// check refuses NAL units RTP cannot carry as they are.
	check(au [][]byte) error
	// sprops are the fmtp parameters that carry parameter sets.
	sprops() []string
}

type h264NAL struct{}

func (h264NAL) slot(n []byte) int {
	switch n[0] & 0x1f {
	case 7:
		return slotSPS
	case 8:
		return slotPPS
	}
	return noSlot
}

func (h264NAL) vcl(n []byte) (bool, bool) {
	t := n[0] & 0x1f
	return t >= 1 && t <= 5, t == 5
}

func (h264NAL) needs() []int { return []int{slotSPS, slotPPS} }

func (h264NAL) check(au [][]byte) error {
	for _, n := range au {
		// RFC 6184 §5.4: 24-29 are the payload format's own (STAP, MTAP,
		// FU) and 0, 30, 31 unspecified: a receiver would misread them.
		if t := n[0] & 0x1f; t == 0 || t >= 24 {
			return fmt.Errorf("%w: H264 NAL unit type %d cannot be sent over RTP", ErrBadAccessUnit, t)
		}
		// H.264 §7.4.1: forbidden_zero_bit is 0 (RFC 6184 §5.3: a 1 marks
		// a damaged NAL unit, and FU-A cannot carry it).
		if n[0]&0x80 != 0 {
			return fmt.Errorf("%w: H264 NAL unit with forbidden_zero_bit set", ErrBadAccessUnit)
		}
	}
	return nil
}

func (h264NAL) sprops() []string { return []string{"sprop-parameter-sets"} }

type h265NAL struct{}

func h265Type(n []byte) byte { return n[0] >> 1 & 0x3f }

func (h265NAL) slot(n []byte) int {
	switch h265Type(n) {
	case 32:
		return slotVPS
	case 33:
		return slotSPS
	case 34:
		return slotPPS
	}
	return noSlot
}

func (h265NAL) vcl(n []byte) (bool, bool) {
	t := h265Type(n)
	return t <= 31, t >= 16 && t <= 23
}

func (h265NAL) needs() []int { return []int{slotVPS, slotSPS, slotPPS} }

func (h265NAL) check(au [][]byte) error {
	for _, n := range au {
		if len(n) < 2 {
			return fmt.Errorf("%w: H265 NAL unit of %d byte, shorter than its header", ErrBadAccessUnit, len(n))
		}
		// RFC 7798 §4.4: 48-50 are the payload format's own (AP, FU,
		// PACI), 51-63 unspecified.
		if t := h265Type(n); t >= 48 {
			return fmt.Errorf("%w: H265 NAL unit type %d cannot be sent over RTP", ErrBadAccessUnit, t)
		}
		if n[0]&0x80 != 0 {
			return fmt.Errorf("%w: H265 NAL unit with forbidden_zero_bit set", ErrBadAccessUnit)
		}
		// H.265 §7.4.2.2: nuh_temporal_id_plus1 is never 0 (a start code
		// left in front of the NAL unit reads so).
		if n[1]&0x07 == 0 {
			return fmt.Errorf("%w: H265 NAL unit with nuh_temporal_id_plus1 0 (a start code left in?)", ErrBadAccessUnit)
		}
	}
	return nil
}

func (h265NAL) sprops() []string { return []string{"sprop-vps", "sprop-sps", "sprop-pps"} }

// paramSets keeps a track's newest parameter sets and completes the
// keyframes that lack them.
type paramSets struct {
	codec nalCodec
	// sets holds the newest VPS, SPS, PPS. A stored set is never written
	// to, only replaced, so access units may point into it.
	sets    [3][]byte
	scratch [][]byte // the completed access unit, reused
}

// newParamSets returns the parameter sets of a track, seeded from the
// sprop parameters of its fmtp line.
func newParamSets(c nalCodec, fmtp string) *paramSets {
	p := &paramSets{codec: c}
	f := media.ParseFmtp(fmtp)
	for _, k := range c.sprops() {
		for _, s := range strings.Split(f[k], ",") {
			n, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
			if err == nil && len(n) > 0 {
				p.keep(n)
			}
		}
	}
	return p
}

// keep stores nalu if it is a parameter set that differs from the one
// stored.
func (p *paramSets) keep(nalu []byte) {
	s := p.codec.slot(nalu)
	if s == noSlot || bytes.Equal(p.sets[s], nalu) {
		return
	}
	p.sets[s] = bytes.Clone(nalu)
}

// complete returns au with the parameter sets it lacks put before its
// first slice, when that slice is a keyframe's; otherwise au itself. The
// parameter sets au carries become the newest. The result is valid until
// the next call.
func (p *paramSets) complete(au [][]byte) [][]byte {
	var have [3]bool
	first, key := -1, false
	for i, n := range au {
		if s := p.codec.slot(n); s != noSlot {
			have[s] = true
			p.keep(n)
			continue
		}
		if vcl, k := p.codec.vcl(n); vcl && first < 0 {
			first, key = i, k
		}
	}
	if !key {
		return au
	}
	missing := false
	for _, s := range p.codec.needs() {
		if !have[s] && p.sets[s] != nil {
			missing = true
		}
	}
	if !missing {
		return au
	}
	out := append(p.scratch[:0], au[:first]...)
	for _, s := range p.codec.needs() {
		if !have[s] && p.sets[s] != nil {
			out = append(out, p.sets[s])
		}
	}
	out = append(out, au[first:]...)
	p.scratch = out
	return out
}

// release lets go of the last completed access unit's buffers, which are
// the source's.
func (p *paramSets) release() { clear(p.scratch) }
