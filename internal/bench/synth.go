package bench

import "fmt"

// bitWriter writes the fixed-width and Exp-Golomb fields of an H264 RBSP
// (ITU-T H.264 §7.2, §9.1).
type bitWriter struct {
	buf []byte
	n   int // bits written
}

func (w *bitWriter) bit(b uint) {
	if w.n%8 == 0 {
		w.buf = append(w.buf, 0)
	}
	if b != 0 {
		w.buf[len(w.buf)-1] |= 0x80 >> (w.n % 8)
	}
	w.n++
}

func (w *bitWriter) bits(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		w.bit(uint(v>>i) & 1)
	}
}

// ue writes an unsigned Exp-Golomb code: v+1 in binary, preceded by as many
// zeros as it has bits after the first.
func (w *bitWriter) ue(v uint64) {
	x := v + 1
	n := 0
	for t := x; t > 1; t >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(x, n+1)
}

// se writes a signed Exp-Golomb code (§9.1.1: k>0 → 2k-1, k≤0 → -2k).
func (w *bitWriter) se(v int64) {
	if v > 0 {
		w.ue(uint64(2*v - 1))
	} else {
		w.ue(uint64(-2 * v))
	}
}

// trailing writes rbsp_trailing_bits: a one, then zeros to the byte end.
func (w *bitWriter) trailing() {
	w.bit(1)
	for w.n%8 != 0 {
		w.bit(0)
	}
}

// addEmulationPrevention inserts 0x03 after every two zero bytes that are
// followed by a byte ≤ 3 (§7.4.1), turning an RBSP into NAL unit payload.
func addEmulationPrevention(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64+2)
	zeros := 0
	for _, b := range rbsp {
		if zeros >= 2 && b <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, b)
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// h264Level returns a level_idc that admits width×height at fps for the
// frame size and macroblock rate limits of Table A-1.
func h264Level(width, height, fps int) byte {
	mbs := ((width + 15) / 16) * ((height + 15) / 16)
	rate := mbs * fps
	levels := []struct {
		idc          byte
		maxFS, maxMB int
	}{
		{30, 1620, 40500},
		{31, 3600, 108000},
		{32, 5120, 216000},
		{40, 8192, 245760},
		{42, 8704, 522240},
		{50, 22080, 589824},
		{51, 36864, 983040},
		{52, 36864, 2073600},
	}
	for _, l := range levels {
		if mbs <= l.maxFS && rate <= l.maxMB {
			return l.idc
		}
	}
	return 52
}

// synthSPS returns a constrained baseline SPS for width×height (§7.3.2.1.1):
// profile_idc 66 with constraint_set0/1, frame_num of 4 bits, picture order
// count type 2, one reference frame, progressive, cropped to the exact size,
// no VUI.
func synthSPS(width, height int, level byte) []byte {
	mbw, mbh := (width+15)/16, (height+15)/16
	w := &bitWriter{}
	w.bits(66, 8)   // profile_idc: baseline
	w.bits(0xc0, 8) // constraint_set0_flag, constraint_set1_flag: constrained baseline
	w.bits(uint64(level), 8)
	w.ue(0) // seq_parameter_set_id
	w.ue(0) // log2_max_frame_num_minus4
	w.ue(2) // pic_order_cnt_type
	w.ue(1) // max_num_ref_frames
	w.bit(0)
	w.ue(uint64(mbw - 1))
	w.ue(uint64(mbh - 1))
	w.bit(1) // frame_mbs_only_flag
	w.bit(1) // direct_8x8_inference_flag
	cropR, cropB := (16*mbw-width)/2, (16*mbh-height)/2
	if cropR != 0 || cropB != 0 {
		w.bit(1) // frame_cropping_flag; units of 2 luma samples for 4:2:0 frames
		w.ue(0)
		w.ue(uint64(cropR))
		w.ue(0)
		w.ue(uint64(cropB))
	} else {
		w.bit(0)
	}
	w.bit(0) // vui_parameters_present_flag
	w.trailing()
	return append([]byte{0x67}, addEmulationPrevention(w.buf)...)
}

// synthPPS returns the matching PPS (§7.3.2.2): CAVLC, one slice group,
// deblocking control present.
func synthPPS() []byte {
	w := &bitWriter{}
	w.ue(0)  // pic_parameter_set_id
	w.ue(0)  // seq_parameter_set_id
	w.bit(0) // entropy_coding_mode_flag: CAVLC
	w.bit(0) // bottom_field_pic_order_in_frame_present_flag
	w.ue(0)  // num_slice_groups_minus1
	w.ue(0)  // num_ref_idx_l0_default_active_minus1
	w.ue(0)  // num_ref_idx_l1_default_active_minus1
	w.bit(0) // weighted_pred_flag
	w.bits(0, 2)
	w.se(0)  // pic_init_qp_minus26
	w.se(0)  // pic_init_qs_minus26
	w.se(0)  // chroma_qp_index_offset
	w.bit(1) // deblocking_filter_control_present_flag
	w.bit(0) // constrained_intra_pred_flag
	w.bit(0) // redundant_pic_cnt_present_flag
	w.trailing()
	return append([]byte{0x68}, addEmulationPrevention(w.buf)...)
}

// synthSlice returns a slice NAL unit of exactly size bytes (size ≥ 16):
// a valid slice header (§7.3.3) for an IDR I slice or a P slice with the
// given frame_num, followed by filler that is not valid macroblock data.
// Servers route it by its NAL header; a decoder would reject the picture.
func synthSlice(idr bool, frameNum, size int) []byte {
	w := &bitWriter{}
	w.ue(0) // first_mb_in_slice
	if idr {
		w.ue(7) // slice_type: I, all slices
	} else {
		w.ue(5) // slice_type: P, all slices
	}
	w.ue(0)                        // pic_parameter_set_id
	w.bits(uint64(frameNum%16), 4) // frame_num (log2_max_frame_num = 4)
	if idr {
		w.ue(0)  // idr_pic_id
		w.bit(0) // no_output_of_prior_pics_flag
		w.bit(0) // long_term_reference_flag
	} else {
		w.bit(0) // num_ref_idx_active_override_flag
		w.bit(0) // ref_pic_list_modification_flag_l0
		w.bit(0) // adaptive_ref_pic_marking_mode_flag
	}
	w.se(0) // slice_qp_delta
	w.ue(1) // disable_deblocking_filter_idc
	w.trailing()
	head := byte(0x41) // nal_ref_idc 2, non-IDR slice
	if idr {
		head = 0x65 // nal_ref_idc 3, IDR slice
	}
	nal := append([]byte{head}, addEmulationPrevention(w.buf)...)
	// Filler without zero bytes: no start code or emulation can form.
	x := uint32(frameNum)*2654435761 + 1
	for len(nal) < size {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b := byte(x)
		if b == 0 {
			b = 0x5a
		}
		nal = append(nal, b)
	}
	return nal
}

// synthGOP returns one group of pictures of width×height: an IDR access
// unit (SPS, PPS, IDR slice) and gop-1 P access units, sized so that the
// mean access unit is avgBytes with the IDR keyframeRatio times a P frame.
func synthGOP(width, height, fps, gop, avgBytes int) ([][][]byte, error) {
	if width < 16 || height < 16 || width > 8192 || height > 8192 || width%2 != 0 || height%2 != 0 {
		return nil, fmt.Errorf("resolution %dx%d: want even sizes in 16..8192", width, height)
	}
	if gop < 1 {
		return nil, fmt.Errorf("gop %d: want ≥ 1", gop)
	}
	const keyframeRatio = 4
	sps, pps := synthSPS(width, height, h264Level(width, height, fps)), synthPPS()
	p := avgBytes * gop / (gop + keyframeRatio - 1)
	i := keyframeRatio*p - len(sps) - len(pps)
	if gop == 1 {
		i = avgBytes - len(sps) - len(pps)
	}
	p, i = max(p, 32), max(i, 32)
	aus := make([][][]byte, 0, gop)
	aus = append(aus, [][]byte{sps, pps, synthSlice(true, 0, i)})
	for n := 1; n < gop; n++ {
		aus = append(aus, [][]byte{synthSlice(false, n, p)})
	}
	return aus, nil
}
