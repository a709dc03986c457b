package frame

import (
	"fmt"

	mch265 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/sluice-media/sluice/internal/media"
)

// H265 NAL unit types (ITU-T H.265 Table 7-1, RFC 7798 §4.4).
const (
	h265IRAPFirst = 16
	h265IRAPLast  = 23
	h265VPS       = 32
	h265SPS       = 33
	h265PPS       = 34
	h265AUD       = 35
	h265PrefixSEI = 39
	h265AP        = 48
	h265FU        = 49
)

// H265 rebuilds H265 access units from RFC 7798 payloads: single NAL unit
// packets, aggregation packets (AP) and fragmentation units (FU). DONL
// fields are not supported: sluice never negotiates sprop-max-don-diff.
// PACI packets are treated as damage.
type H265 struct{ nal }

func (d *H265) seed(fmtp string) {
	d.c = h265Codec{}
	for _, k := range []string{"sprop-vps", "sprop-sps", "sprop-pps"} {
		d.seedParams(fmtpParam(fmtp, k))
	}
}

// NewH265 returns an H265 depacketizer without wall clock, for track 0 at
// 90 kHz.
func NewH265() *H265 {
	d := &H265{nal{base: base{clockRate: 90000}}}
	d.seed("")
	return d
}

func h265Type(b byte) byte { return b >> 1 & 0x3f }

type h265Codec struct{}

func (h265Codec) unpack(d *nal, p []byte) error {
	if len(p) < 3 {
		return errMalformed
	}
	switch t := h265Type(p[0]); {
	case t < h265AP:
		return d.add(p)
	case t == h265AP:
		// RFC 7798 §4.4.2: payload header, then (16-bit size, NAL unit)+.
		return d.aggregated(p[2:], 3)
	case t == h265FU:
		// RFC 7798 §4.4.3: payload header, FU header (S, E, type), data.
		if len(p) < 4 {
			return errMalformed
		}
		fuh := p[2]
		hdr := [2]byte{p[0]&0x81 | (fuh&0x3f)<<1, p[1]}
		return d.fragment(fuh&0x80 != 0, fuh&0x40 != 0, hdr[:], p[3:])
	default:
		return errUnsupported
	}
}

func (h265Codec) classify(n []byte) nalClass {
	switch t := h265Type(n[0]); {
	case t >= h265IRAPFirst && t <= h265IRAPLast:
		return nalKey
	case t == h265VPS:
		return nalVPS
	case t == h265SPS:
		return nalSPS
	case t == h265PPS:
		return nalPPS
	case t == h265AUD:
		return nalAUD
	}
	return nalOther
}

func (h265Codec) startsAU(p []byte) bool {
	if len(p) < 3 {
		return false
	}
	t, data := h265Type(p[0]), p[2:]
	switch t {
	case h265AP:
		if len(p) < 7 {
			return false
		}
		t, data = h265Type(p[4]), p[6:]
	case h265FU:
		if p[2]&0x80 == 0 || len(p) < 4 {
			return false
		}
		t, data = p[2]&0x3f, p[3:]
	}
	switch {
	case t == h265AUD || t == h265VPS || t == h265SPS || t == h265PPS || t == h265PrefixSEI:
		return true
	case t < 32:
		// first_slice_segment_in_pic_flag opens the slice segment header.
		return len(data) > 0 && data[0]&0x80 != 0
	}
	return false
}

func (h265Codec) params() []nalClass { return []nalClass{nalVPS, nalSPS, nalPPS} }

func (h265Codec) videoInfo(nalu []byte) (media.VideoInfo, error) {
	var sps mch265.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return media.VideoInfo{}, err
	}
	if sps.ChromaFormatIdc > 3 {
		return media.VideoInfo{}, fmt.Errorf("chroma_format_idc %d", sps.ChromaFormatIdc)
	}
	ptl := &sps.ProfileTierLevel
	return media.VideoInfo{
		Width:   sps.Width(),
		Height:  sps.Height(),
		Profile: h265Profile(ptl.GeneralProfileIdc),
		// general_level_idc is 30 times the level (ITU-T H.265 A.4).
		Level: levelString(int(ptl.GeneralLevelIdc) / 3),
	}, nil
}

// h265Profile names general_profile_idc (ITU-T H.265 Annex A.3).
func h265Profile(idc uint8) string {
	switch idc {
	case 1:
		return "Main"
	case 2:
		return "Main 10"
	case 3:
		return "Main Still Picture"
	case 4:
		return "Format Range Extensions"
	}
	return fmt.Sprintf("general_profile_idc %d", idc)
}
