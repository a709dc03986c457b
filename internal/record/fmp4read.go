package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	amp4 "github.com/abema/go-mp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// maxInitSize bounds the ftyp+moov block read from a recording file.
const maxInitSize = 1 << 20

// sampleFlagNonSync is the sample_is_non_sync_sample bit of a trun's
// sample flags (ISO 14496-12 §8.8.3.1).
const sampleFlagNonSync = 1 << 16

// fileSample is one sample of a recording file: where its bytes are and
// its times in its track's timescale, from the file's time 0.
type fileSample struct {
	dts       int64
	dur       uint32
	ptsOffset int32
	sync      bool
	offset    int64
	size      uint32
}

// recordedFile is what a recording file holds: its tracks and, per track
// ID, its samples in decode order.
type recordedFile struct {
	init    fmp4.Init
	samples map[int][]fileSample
	dur     time.Duration // the longest track's end
}

// readFile reads a recording's init block and the headers of its
// fragments (the media stays on disk). A fragment cut short by a crash
// ends the file.
func readFile(r io.ReadSeeker) (*recordedFile, error) {
	head, err := readInitBlock(r)
	if err != nil {
		return nil, err
	}
	rf := &recordedFile{samples: map[int][]fileSample{}}
	if err := rf.init.Unmarshal(bytes.NewReader(head)); err != nil {
		return nil, fmt.Errorf("init block: %w", err)
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	var moof uint64
	var tfhd *amp4.Tfhd
	var tfdt *amp4.Tfdt
	_, err = amp4.ReadBoxStructure(r, func(h *amp4.ReadHandle) (any, error) {
		switch h.BoxInfo.Type.String() {
		case "moof":
			moof = h.BoxInfo.Offset
			tfhd, tfdt = nil, nil
			return h.Expand()
		case "traf":
			return h.Expand()
		case "tfhd":
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tfhd = box.(*amp4.Tfhd)
		case "tfdt":
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			tfdt = box.(*amp4.Tfdt)
		case "trun":
			if tfhd == nil || tfdt == nil {
				return nil, errors.New("trun without tfhd and tfdt")
			}
			box, _, err := h.ReadPayload()
			if err != nil {
				return nil, err
			}
			trun := box.(*amp4.Trun)
			id := int(tfhd.TrackID)
			off := int64(moof) + int64(trun.DataOffset)
			dts := int64(tfdt.BaseMediaDecodeTimeV1)
			if tfdt.GetVersion() == 0 {
				dts = int64(tfdt.BaseMediaDecodeTimeV0)
			}
			for i, e := range trun.Entries {
				if off+int64(e.SampleSize) > size {
					break // cut short
				}
				rf.samples[id] = append(rf.samples[id], fileSample{dts: dts, dur: e.SampleDuration,
					ptsOffset: int32(trun.GetSampleCompositionTimeOffset(i)),
					sync:      e.SampleFlags&sampleFlagNonSync == 0, offset: off, size: e.SampleSize})
				off += int64(e.SampleSize)
				dts += int64(e.SampleDuration)
			}
		}
		return nil, nil
	})
	if err != nil && len(rf.samples) == 0 {
		return nil, err
	}
	for _, t := range rf.init.Tracks {
		s := rf.samples[t.ID]
		if len(s) == 0 {
			continue
		}
		last := s[len(s)-1]
		rf.dur = max(rf.dur, mp4ToDuration(last.dts+int64(last.dur), t.TimeScale))
	}
	return rf, nil
}

// readInitBlock returns the ftyp and moov boxes at the start of a file.
func readInitBlock(r io.ReadSeeker) ([]byte, error) {
	var hdr [8]byte
	var total int64
	for _, want := range []string{"ftyp", "moov"} {
		if _, err := r.Seek(total, io.SeekStart); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil, fmt.Errorf("no %s box: %w", want, err)
		}
		if string(hdr[4:]) != want {
			return nil, fmt.Errorf("no %s box", want)
		}
		n := int64(binary.BigEndian.Uint32(hdr[:4]))
		if n < 8 || total+n > maxInitSize {
			return nil, fmt.Errorf("%s box of %d bytes", want, n)
		}
		total += n
	}
	head := make([]byte, total)
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	return head, nil
}

func mp4ToDuration(v int64, timescale uint32) time.Duration {
	ts := int64(timescale)
	return time.Duration(v/ts)*time.Second + time.Duration(v%ts)*time.Second/time.Duration(ts)
}

func durationToMP4(d time.Duration, timescale uint32) int64 {
	ts := int64(timescale)
	return int64(d/time.Second)*ts + int64(d%time.Second)*ts/int64(time.Second)
}
