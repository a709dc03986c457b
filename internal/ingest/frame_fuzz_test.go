package ingest

import (
	"bytes"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mch265 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/media"
)

// fuzzCodecs are the codecs FuzzFrameTrack packetizes, by its first
// argument. The H264/H265 ones carry no parameter sets, so that nothing
// is added to an access unit that a fresh track writes twice.
func fuzzCodecs(t testing.TB) []media.Codec {
	return []media.Codec{
		H264Codec(nil, nil), H265Codec(nil, nil, nil), VP8Codec(), VP9Codec(), AV1Codec(),
		OpusCodec(2), aacConfig(t), G711Codec(true, 8000, 1), G711Codec(false, 16000, 2),
	}
}

// FuzzFrameTrack writes an arbitrary access unit (encodeAU's format) twice
// to a fresh track of one codec. What Write refuses must leave no
// packet; what it takes must come out as packets within the MTU, with
// continuous sequence numbers, PTS timestamps and markers, that gortsplib's
// depacketizer rebuilds byte for byte (where the input is within that
// depacketizer's own limits), and sluice's too where it gives a frame.
func FuzzFrameTrack(f *testing.F) {
	codecs := fuzzCodecs(f)
	for _, c := range frameCases(f) {
		which := -1
		for i, fc := range codecs {
			if fc.MimeType == c.codec.MimeType {
				which = i
				break
			}
		}
		for _, w := range c.writes {
			f.Add(uint8(which), encodeAU(w.au))
		}
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		c := codecs[int(which)%len(codecs)]
		au := decodeAU(data)
		var log packetLog
		ft, err := NewFrameTrack(c, 1, &log, nil)
		if err != nil {
			t.Fatal(err)
		}
		dec := newRTPDecoder(t, c)
		sluiceDec, _ := frame.New(c, 1, nil)
		var seq uint16
		for i, pts := range []time.Duration{time.Second, time.Second + dur(40)} {
			n := len(log.pkts)
			if err := ft.Write(pts, pts, au); err != nil {
				if len(log.pkts) != n {
					t.Fatalf("refused (%v) but wrote %d packets", err, len(log.pkts)-n)
				}
				return
			}
			pkts := log.pkts[n:]
			if i == 0 {
				seq = pkts[0].SequenceNumber
			}
			for _, p := range pkts {
				if p.SequenceNumber != seq {
					t.Fatalf("sequence number %d, want %d", p.SequenceNumber, seq)
				}
				seq++
			}
			ts := pkts[0].Timestamp
			if i == 1 && ts-log.pkts[0].Timestamp != rtpTime(dur(40), c.ClockRate) {
				t.Fatalf("timestamp advanced %d over 40 ms at %d Hz", ts-log.pkts[0].Timestamp, c.ClockRate)
			}
			if !decodable(c, au) {
				continue
			}
			checkWrite(t, c, 1, pkts, ts, dec, au)
			if sluiceDec != nil {
				for _, p := range pkts {
					if fr, ok := sluiceDec.Push(p); ok {
						units := fr.NALUs
						if units == nil {
							units = [][]byte{fr.Payload}
						}
						if !equalAU(units, au) {
							t.Fatalf("sluice's depacketizer: %s, want %s", describe(units), describe(au))
						}
					}
				}
			}
		}
	})
}

// decodable reports whether au is within what gortsplib's depacketizer
// for c takes back unchanged: its bounds on units per access unit, and
// (H264, H265) no start code inside a NAL unit, which it splits at (a
// real NAL unit has none: emulation prevention, H.264 §7.4.1).
func decodable(c media.Codec, au [][]byte) bool {
	switch c.Name() {
	case "H264", "H265":
		for _, n := range au {
			if bytes.Contains(n, []byte{0, 0, 1}) {
				return false
			}
		}
		if c.Name() == "H265" {
			return len(au) <= mch265.MaxNALUsPerAccessUnit
		}
		return len(au) <= mch264.MaxNALUsPerAccessUnit
	case "AV1":
		return len(au) <= av1.MaxOBUsPerTemporalUnit
	}
	return true
}
