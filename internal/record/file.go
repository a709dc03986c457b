package record

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"

	mcav1 "github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mch265 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4/codecs"

	"github.com/sluice-media/sluice/internal/tap"
)

// fragmentDuration is how much media one fragment (moof+mdat) holds: what
// a crash can lose, and what the writer keeps in memory.
const fragmentDuration = time.Second

// sink is where a segment's bytes go: an *os.File, or a stand-in in tests.
type sink interface {
	io.Writer
	Truncate(size int64) error
	Close() error
}

// segment writes one fragmented MP4 file: the init block (ftyp, moov)
// from the first keyframe's parameter sets, then a fragment per
// fragmentDuration. The file is playable on its own and, up to its last
// whole fragment, even if sluice dies while writing it. Times in the file
// start at 0 at the segment's first unit.
type segment struct {
	out     sink
	path    string
	size    int64 // bytes written, all whole boxes
	counted int64 // of size, what the manager's byte count has
	start   time.Duration
	gen     uint32
	params  [][]byte // the parameter sets in the init block
	seq     uint32
	tracks  []*segTrack
	lead    *segTrack // the track that decides fragment boundaries
	buf     seekablebuffer.Buffer
}

// segTrack is one track's samples waiting for a fragment. The newest
// sample is held back until the next one gives its duration.
type segTrack struct {
	id        int
	track     *tap.Track
	timescale int64
	h264      *mch264.DTSExtractor
	h265      *mch265.DTSExtractor
	av1       bool // samples are temporal units in the low overhead bitstream format

	pending    *fmp4.Sample
	pendingDTS int64
	lastDur    uint32
	samples    []*fmp4.Sample
	baseDTS    int64 // DTS of samples[0]
}

// newSegment writes the init block for the tracks; first is the unit the
// segment starts with (a video keyframe when there is video).
func newSegment(out sink, path string, video, audio *tap.Track, first *tap.Unit) (*segment, error) {
	s := &segment{out: out, path: path, start: first.Time(), gen: first.Gen}
	var init fmp4.Init
	if video != nil {
		var c codecs.Codec
		t := &segTrack{track: video, timescale: int64(video.ClockRate)}
		switch video.Codec {
		case tap.H264:
			sps, pps := findNALU(first.NALUs, h264Type, 7), findNALU(first.NALUs, h264Type, 8)
			if sps == nil || pps == nil {
				return nil, errors.New("keyframe without SPS/PPS")
			}
			c = &codecs.H264{SPS: sps, PPS: pps}
			s.params = [][]byte{sps, pps}
			t.h264 = &mch264.DTSExtractor{}
			t.h264.Initialize()
		case tap.H265:
			vps, sps, pps := findNALU(first.NALUs, h265Type, 32), findNALU(first.NALUs, h265Type, 33), findNALU(first.NALUs, h265Type, 34)
			if vps == nil || sps == nil || pps == nil {
				return nil, errors.New("keyframe without VPS/SPS/PPS")
			}
			c = &codecs.H265{VPS: vps, SPS: sps, PPS: pps}
			s.params = [][]byte{vps, sps, pps}
			t.h265 = &mch265.DTSExtractor{}
			t.h265.Initialize()
		case tap.AV1:
			// AV1-ISOBMFF §2.3: the sequence header OBU goes into av1C.
			seq := findNALU(first.NALUs, av1Type, av1SequenceHeader)
			if seq == nil {
				return nil, errors.New("key temporal unit without a sequence header")
			}
			c = &codecs.AV1{SequenceHeader: seq}
			s.params = [][]byte{seq}
			t.av1 = true
		}
		s.addTrack(&init, t, c)
	}
	if audio != nil {
		var c codecs.Codec
		switch audio.Codec {
		case tap.AAC:
			c = &codecs.MPEG4Audio{Config: audio.AAC}
		case tap.Opus:
			c = &codecs.Opus{ChannelCount: audio.Channels}
		}
		s.addTrack(&init, &segTrack{track: audio, timescale: int64(audio.ClockRate)}, c)
	}
	s.lead = s.tracks[0]
	if err := init.Marshal(&s.buf); err != nil {
		return nil, err
	}
	return s, s.flushBuf()
}

func (s *segment) addTrack(init *fmp4.Init, t *segTrack, c codecs.Codec) {
	t.id = len(s.tracks) + 1
	s.tracks = append(s.tracks, t)
	init.Tracks = append(init.Tracks, &fmp4.InitTrack{ID: t.id, TimeScale: uint32(t.timescale), Codec: c})
}

// paramsChanged reports whether a keyframe carries other parameter sets
// than the init block: a new resolution needs a new file.
func (s *segment) paramsChanged(u *tap.Unit) bool {
	var got [][]byte
	switch u.Track.Codec {
	case tap.H264:
		got = [][]byte{findNALU(u.NALUs, h264Type, 7), findNALU(u.NALUs, h264Type, 8)}
	case tap.H265:
		got = [][]byte{findNALU(u.NALUs, h265Type, 32), findNALU(u.NALUs, h265Type, 33), findNALU(u.NALUs, h265Type, 34)}
	case tap.AV1:
		got = [][]byte{findNALU(u.NALUs, av1Type, av1SequenceHeader)}
	default:
		return false
	}
	for i, p := range got {
		if p != nil && !bytes.Equal(p, s.params[i]) {
			return true
		}
	}
	return false
}

// write adds one unit; units come in presentation order.
func (s *segment) write(u *tap.Unit) error {
	var t *segTrack
	for _, x := range s.tracks {
		if x.track == u.Track {
			t = x
		}
	}
	if t == nil {
		return nil
	}
	// The segment's time 0 is its first unit, in each track's timescale.
	d := u.Time() - s.start
	pts := int64(d/time.Second)*t.timescale + int64(d%time.Second)*t.timescale/int64(time.Second)
	if pts < 0 {
		return nil // audio from before the segment's first keyframe
	}
	sample := &fmp4.Sample{IsNonSyncSample: !u.Key}
	dts := pts
	switch {
	case t.h264 != nil || t.h265 != nil:
		var err error
		if t.h264 != nil {
			dts, err = t.h264.Extract(u.NALUs, pts)
		} else {
			dts, err = t.h265.Extract(u.NALUs, pts)
		}
		if err != nil {
			return nil // one undecodable access unit: skip it
		}
		avcc, err := mch264.AVCC(u.NALUs).Marshal()
		if err != nil {
			return nil
		}
		sample.PTSOffset = int32(pts - dts)
		sample.Payload = avcc
	case t.av1:
		// AV1 has no reordering between temporal units: DTS is PTS.
		bs, err := mcav1.Bitstream(u.NALUs).Marshal()
		if err != nil {
			return nil
		}
		sample.Payload = bs
	default:
		sample.Payload = u.Payload
	}
	if dts < 0 {
		dts = 0
	}
	if t.pending != nil {
		d := dts - t.pendingDTS
		if d <= 0 {
			return nil // not after the previous sample: drop it
		}
		t.pending.Duration = uint32(d)
		t.lastDur = t.pending.Duration
		if len(t.samples) == 0 {
			t.baseDTS = t.pendingDTS
		}
		t.samples = append(t.samples, t.pending)
	}
	t.pending, t.pendingDTS = sample, dts
	if t == s.lead && len(t.samples) > 0 &&
		time.Duration(dts-t.baseDTS)*time.Second/time.Duration(t.timescale) >= fragmentDuration {
		return s.fragment()
	}
	return nil
}

// fragment writes the samples gathered so far as one moof+mdat.
func (s *segment) fragment() error {
	part := fmp4.Part{SequenceNumber: s.seq + 1}
	for _, t := range s.tracks {
		if len(t.samples) == 0 {
			continue
		}
		part.Tracks = append(part.Tracks, &fmp4.PartTrack{ID: t.id, BaseTime: uint64(t.baseDTS), Samples: t.samples})
	}
	if len(part.Tracks) == 0 {
		return nil
	}
	if err := part.Marshal(&s.buf); err != nil {
		return err
	}
	s.seq++
	for _, t := range s.tracks {
		t.samples = nil
	}
	return s.flushBuf()
}

// flushBuf writes the buffered boxes; after a failed write the file is
// cut back to its last whole box, so that it stays playable.
func (s *segment) flushBuf() error {
	b := s.buf.Bytes()
	s.buf.Reset()
	n, err := s.out.Write(b)
	if err != nil {
		if n > 0 {
			_ = s.out.Truncate(s.size)
		}
		return err
	}
	s.size += int64(n)
	return nil
}

// close writes the held-back samples (the last one of each track lasts as
// long as the one before it) and closes the file.
func (s *segment) close() error {
	for _, t := range s.tracks {
		if t.pending == nil {
			continue
		}
		t.pending.Duration = t.lastDur
		if t.pending.Duration == 0 {
			t.pending.Duration = uint32(t.timescale / 25)
		}
		if len(t.samples) == 0 {
			t.baseDTS = t.pendingDTS
		}
		t.samples = append(t.samples, t.pending)
		t.pending = nil
	}
	err := s.fragment()
	if cerr := s.out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

// abort closes the file after a write error without writing more.
func (s *segment) abort() { _ = s.out.Close() }

func h264Type(n []byte) int { return int(n[0] & 0x1f) }
func h265Type(n []byte) int { return int(n[0] >> 1 & 0x3f) }
func av1Type(n []byte) int  { return int(n[0] >> 3 & 0x0f) }

// av1SequenceHeader is OBU_SEQUENCE_HEADER (AV1 spec §6.2.2).
const av1SequenceHeader = 1

// findNALU returns the first NAL unit of type typ.
func findNALU(nalus [][]byte, kind func([]byte) int, typ int) []byte {
	for _, n := range nalus {
		if len(n) > 0 && kind(n) == typ {
			return n
		}
	}
	return nil
}
