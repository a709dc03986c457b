package frame

import (
	"fmt"

	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"

	"github.com/sluice-media/sluice/internal/media"
)

// H264 NAL unit types (ITU-T H.264 Table 7-1, RFC 6184 §5.2).
const (
	h264SEI   = 6
	h264IDR   = 5
	h264SPS   = 7
	h264PPS   = 8
	h264AUD   = 9
	h264STAPA = 24
	h264FUA   = 28
)

// H264 rebuilds H264 access units from RFC 6184 payloads in
// non-interleaved mode: single NAL unit packets, STAP-A and FU-A.
type H264 struct{ nal }

func (d *H264) seed(fmtp string) {
	d.c = h264Codec{}
	d.seedParams(fmtpParam(fmtp, "sprop-parameter-sets"))
}

// NewH264 returns an H264 depacketizer without wall clock, for track 0 at
// 90 kHz.
func NewH264() *H264 {
	d := &H264{nal{base: base{clockRate: 90000}}}
	d.seed("")
	return d
}

type h264Codec struct{}

func (h264Codec) unpack(d *nal, p []byte) error {
	if len(p) == 0 {
		return errMalformed
	}
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		return d.add(p)
	case t == h264STAPA:
		// RFC 6184 §5.7.1: the STAP-A header, then (16-bit size, NAL unit)+.
		return d.aggregated(p[1:], 1)
	case t == h264FUA:
		// RFC 6184 §5.8: FU indicator (F, NRI), FU header (S, E, R, type).
		if len(p) < 3 {
			return errMalformed
		}
		hdr := [1]byte{p[0]&0xe0 | p[1]&0x1f}
		return d.fragment(p[1]&0x80 != 0, p[1]&0x40 != 0, hdr[:], p[2:])
	default: // STAP-B, MTAP and FU-B belong to interleaved mode
		return errUnsupported
	}
}

func (h264Codec) classify(n []byte) nalClass {
	switch n[0] & 0x1f {
	case h264IDR:
		return nalKey
	case h264SPS:
		return nalSPS
	case h264PPS:
		return nalPPS
	case h264AUD:
		return nalAUD
	}
	return nalOther
}

func (h264Codec) startsAU(p []byte) bool {
	if len(p) < 2 {
		return false
	}
	t, data := p[0]&0x1f, p[1:]
	switch t {
	case h264STAPA:
		if len(p) < 5 {
			return false
		}
		t, data = p[3]&0x1f, p[4:]
	case h264FUA:
		if p[1]&0x80 == 0 || len(p) < 3 {
			return false
		}
		t, data = p[1]&0x1f, p[2:]
	}
	switch {
	case t == h264AUD || t == h264SPS || t == h264PPS || t == h264SEI:
		return true
	case t >= 1 && t <= 5:
		// first_mb_in_slice is ue(v) first in the slice header: 0 is
		// coded as a single 1 bit.
		return len(data) > 0 && data[0]&0x80 != 0
	}
	return false
}

func (h264Codec) params() []nalClass { return []nalClass{nalSPS, nalPPS} }

func (h264Codec) videoInfo(nalu []byte) (media.VideoInfo, error) {
	var sps mch264.SPS
	if err := sps.Unmarshal(nalu); err != nil {
		return media.VideoInfo{}, err
	}
	if sps.ChromaFormatIdc > 3 {
		return media.VideoInfo{}, fmt.Errorf("chroma_format_idc %d", sps.ChromaFormatIdc)
	}
	return media.VideoInfo{
		Width:   sps.Width(),
		Height:  sps.Height(),
		Profile: h264Profile(&sps),
		Level:   h264Level(&sps),
	}, nil
}

// h264Profile names the profile (ITU-T H.264 Annex A.2).
func h264Profile(s *mch264.SPS) string {
	switch s.ProfileIdc {
	case 66:
		if s.ConstraintSet1Flag {
			return "Constrained Baseline"
		}
		return "Baseline"
	case 77:
		return "Main"
	case 88:
		return "Extended"
	case 100:
		if s.ConstraintSet4Flag && s.ConstraintSet5Flag {
			return "Constrained High"
		}
		if s.ConstraintSet4Flag {
			return "Progressive High"
		}
		return "High"
	case 110:
		return "High 10"
	case 122:
		return "High 4:2:2"
	case 244:
		return "High 4:4:4 Predictive"
	case 44:
		return "CAVLC 4:4:4 Intra"
	}
	return fmt.Sprintf("profile_idc %d", s.ProfileIdc)
}

// h264Level formats level_idc (ITU-T H.264 Annex A.3): 31 → "3.1"; level
// 1b is 11 with constraint_set3 in the baseline profiles, or 9.
func h264Level(s *mch264.SPS) string {
	if s.LevelIdc == 9 || (s.LevelIdc == 11 && s.ConstraintSet3Flag && (s.ProfileIdc == 66 || s.ProfileIdc == 77 || s.ProfileIdc == 88)) {
		return "1b"
	}
	return levelString(int(s.LevelIdc))
}
