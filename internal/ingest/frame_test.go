package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp8"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	mch264 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	mch265 "github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// packetLog is a PacketWriter that keeps copies of what it is given (a
// FrameTrack reuses its packet, as the hub copies it).
type packetLog struct{ pkts []*hub.Packet }

func (l *packetLog) Write(p *hub.Packet) {
	c := *p
	c.Payload = bytes.Clone(p.Payload)
	l.pkts = append(l.pkts, &c)
}

// body returns n bytes that follow header, none of them 0, so that no
// start code or emulation-prevention pattern appears by chance.
func body(seed byte, n int, header ...byte) []byte {
	b := append([]byte(nil), header...)
	x := uint32(seed)*2654435761 + 1
	for len(b) < n {
		x = x*1664525 + 1013904223
		b = append(b, byte(x>>24)|1)
	}
	return b
}

// The parameter sets of the repository's H264 clip (testdata/README.md):
// a real SPS gives H264Codec a real profile-level-id.
var (
	h264SPS = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x05, 0x07, 0xec, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc6, 0x0c, 0xa8}
	h264PPS = []byte{0x68, 0xce, 0x3c, 0x80}
	h265VPS = body(1, 24, 0x40, 0x01)
	h265SPS = body(2, 40, 0x42, 0x01)
	h265PPS = body(3, 8, 0x44, 0x01)
)

// write is one FrameTrack.Write of a case and what a receiver must
// rebuild from its packets (nil: au itself).
type write struct {
	pts, dts time.Duration
	au       [][]byte
	want     [][]byte
}

// frameCase is a codec and the access units written to one track, in
// order. The cases are also FuzzFrameTrack's seeds.
type frameCase struct {
	name   string
	codec  media.Codec
	params [][]byte // given to SetParameterSets first
	writes []write
}

func dur(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func aacConfig(t testing.TB) media.Codec {
	t.Helper()
	c, err := AACCodec([]byte{0x12, 0x10}) // AAC-LC, 44.1 kHz, stereo
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func frameCases(t testing.TB) []frameCase {
	idr := body(10, 30000, 0x65, 0x88)
	p := body(11, 3000, 0x41, 0x9a)
	sei := body(12, 30, 0x06, 0x05)
	aud := []byte{0x09, 0xf0}
	h265IDR := body(20, 20000, 0x26, 0x01) // IDR_W_RADL
	h265CRA := body(21, 5000, 0x2a, 0x01)  // CRA_NUT
	h265Trail := body(22, 2500, 0x02, 0x01)
	return []frameCase{
		{name: "H264 IDR with SPS and PPS, P frame", codec: H264Codec(h264SPS, h264PPS), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{h264SPS, h264PPS, idr}},
			{pts: dur(40), dts: dur(40), au: [][]byte{p}},
		}},
		{name: "H264 small NAL units aggregated", codec: H264Codec(nil, nil), writes: []write{
			{pts: dur(10), dts: dur(10), au: [][]byte{aud, sei, body(13, 500, 0x41), body(14, 400, 0x01)}},
		}},
		{name: "H264 NAL units at the MTU", codec: H264Codec(nil, nil), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(15, MaxPayloadSize-1, 0x41)}},
			{pts: dur(33), dts: dur(33), au: [][]byte{body(16, MaxPayloadSize, 0x41)}},
			{pts: dur(66), dts: dur(66), au: [][]byte{body(17, MaxPayloadSize+1, 0x41)}},
			{pts: dur(99), dts: dur(99), au: [][]byte{body(18, 2*(MaxPayloadSize-2)+1, 0x41)}},
		}},
		{name: "H264 IDR lacking parameter sets, given out of band", codec: H264Codec(nil, nil), params: [][]byte{h264SPS, h264PPS}, writes: []write{
			{pts: 0, dts: 0, au: [][]byte{aud, sei, idr}, want: [][]byte{aud, sei, h264SPS, h264PPS, idr}},
			{pts: dur(40), dts: dur(40), au: [][]byte{aud, p}},
		}},
		{name: "H264 IDR lacking parameter sets, from the fmtp", codec: H264Codec(h264SPS, h264PPS), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{idr}, want: [][]byte{h264SPS, h264PPS, idr}},
		}},
		{name: "H264 IDR lacking the PPS, newest in band", codec: H264Codec(nil, nil), params: [][]byte{h264SPS, {0x68, 0x01}}, writes: []write{
			{pts: 0, dts: 0, au: [][]byte{h264SPS, h264PPS, idr}},
			{pts: dur(40), dts: dur(40), au: [][]byte{p}},
			{pts: dur(80), dts: dur(80), au: [][]byte{h264SPS, idr}, want: [][]byte{h264SPS, h264PPS, idr}},
		}},
		{name: "H264 with B-frames", codec: H264Codec(h264SPS, h264PPS), writes: []write{
			{pts: dur(80), dts: 0, au: [][]byte{h264SPS, h264PPS, idr}},
			{pts: dur(200), dts: dur(40), au: [][]byte{p}},
			{pts: dur(120), dts: dur(80), au: [][]byte{body(19, 900, 0x01, 0x9e)}},
			{pts: dur(160), dts: dur(120), au: [][]byte{body(20, 800, 0x01, 0x9e)}},
		}},
		{name: "H265 IDR with parameter sets, trailing picture", codec: H265Codec(nil, nil, nil), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{h265VPS, h265SPS, h265PPS, h265IDR}},
			{pts: dur(40), dts: dur(40), au: [][]byte{h265Trail}},
		}},
		{name: "H265 CRA lacking parameter sets", codec: H265Codec(h265VPS, h265SPS, h265PPS), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{{0x46, 0x01, 0x50}, h265CRA}, want: [][]byte{{0x46, 0x01, 0x50}, h265VPS, h265SPS, h265PPS, h265CRA}},
			{pts: dur(40), dts: dur(40), au: [][]byte{body(23, 300, 0x02, 0x01), body(24, 200, 0x02, 0x01)}},
		}},
		{name: "VP8 key frame and inter frame", codec: VP8Codec(), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(30, 10000, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a)}},
			{pts: dur(33), dts: dur(33), au: [][]byte{body(31, 120, 0x31)}},
		}},
		{name: "VP9 frames", codec: VP9Codec(), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(32, 6000, 0x82, 0x49, 0x83, 0x42)}},
			{pts: dur(33), dts: dur(33), au: [][]byte{body(33, 300, 0x86)}},
		}},
		{name: "AV1 temporal units", codec: AV1Codec(), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{{0x12, 0x00}, body(34, 12, 0x0a, 0x0b), body(35, 8000, 0x32)}},
			{pts: dur(33), dts: dur(33), au: [][]byte{{0x12, 0x00}, body(36, 700, 0x32)}},
		}},
		{name: "Opus packets", codec: OpusCodec(2), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(40, 120, 0xfc)}},
			{pts: dur(20), dts: dur(20), au: [][]byte{body(41, 80, 0xfc)}},
			{pts: dur(40), dts: dur(40), au: [][]byte{body(42, MaxPayloadSize, 0xfc)}},
		}},
		{name: "AAC access units", codec: aacConfig(t), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(50, 371, 0x21)}},
			{pts: 1024 * time.Second / 44100, dts: 1024 * time.Second / 44100, au: [][]byte{body(51, 1500, 0x21)}},
		}},
		{name: "G.711 µ-law samples", codec: G711Codec(true, 8000, 1), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(60, 160)}},
			{pts: dur(20), dts: dur(20), au: [][]byte{body(61, 3000)}},
		}},
		{name: "G.711 A-law stereo samples", codec: G711Codec(false, 16000, 2), writes: []write{
			{pts: 0, dts: 0, au: [][]byte{body(62, 2501)}},
		}},
	}
}

// rtpDecoder is gortsplib's depacketizer for a codec: it returns an
// access unit when a packet completes one, nil while more are needed.
type rtpDecoder func(*rtp.Packet) ([][]byte, error)

func newRTPDecoder(t testing.TB, c media.Codec) rtpDecoder {
	t.Helper()
	more := func(au [][]byte, err error, need error) ([][]byte, error) {
		if errors.Is(err, need) {
			return nil, nil
		}
		return au, err
	}
	one := func(b []byte, err error) ([][]byte, error) {
		if b == nil {
			return nil, err
		}
		return [][]byte{b}, err
	}
	switch c.Name() {
	case "H264":
		d := &rtph264.Decoder{PacketizationMode: 1}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			return more(au, err, rtph264.ErrMorePacketsNeeded)
		}
	case "H265":
		d := &rtph265.Decoder{}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			return more(au, err, rtph265.ErrMorePacketsNeeded)
		}
	case "AV1":
		d := &rtpav1.Decoder{}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			return more(au, err, rtpav1.ErrMorePacketsNeeded)
		}
	case "VP8":
		d := &rtpvp8.Decoder{}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := one(d.Decode(p))
			return more(au, err, rtpvp8.ErrMorePacketsNeeded)
		}
	case "VP9":
		d := &rtpvp9.Decoder{}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := one(d.Decode(p))
			return more(au, err, rtpvp9.ErrMorePacketsNeeded)
		}
	case "opus":
		d := &rtpsimpleaudio.Decoder{}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) { return one(d.Decode(p)) }
	case "MPEG4-GENERIC":
		d := &rtpmpeg4audio.Decoder{SizeLength: aacSizeLength, IndexLength: aacIndexLength, IndexDeltaLength: aacIndexDeltaLength}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) {
			au, err := d.Decode(p)
			return more(au, err, rtpmpeg4audio.ErrMorePacketsNeeded)
		}
	case "PCMU", "PCMA":
		d := &rtplpcm.Decoder{}
		must(t, d.Init())
		return func(p *rtp.Packet) ([][]byte, error) { return one(d.Decode(p)) }
	}
	t.Fatalf("no decoder for %s", c.Name())
	return nil
}

func mustOpen(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func toRTP(p *hub.Packet) *rtp.Packet {
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, Marker: p.Marker, PayloadType: p.PayloadType, SequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp},
		Payload: p.Payload,
	}
}

// isPCM says whether one access unit (samples) may span packets that
// each decode alone.
func isPCM(c media.Codec) bool { return c.Name() == "PCMU" || c.Name() == "PCMA" }

// checkWrite checks the packets one write gave: sizes, payload type,
// marker, timestamps at pts (first packet) plus the samples before each
// (G.711), and what gortsplib's depacketizer rebuilds.
func checkWrite(t testing.TB, c media.Codec, track int, pkts []*hub.Packet, ts uint32, dec rtpDecoder, want [][]byte) {
	t.Helper()
	if len(pkts) == 0 {
		t.Fatal("no packets")
	}
	var got [][]byte
	samples := uint32(0)
	for i, p := range pkts {
		if len(p.Payload) > MaxPayloadSize {
			t.Errorf("packet %d: payload of %d bytes, over %d", i, len(p.Payload), MaxPayloadSize)
		}
		if p.Track != track {
			t.Errorf("packet %d: track %d, want %d", i, p.Track, track)
		}
		if p.PayloadType < 96 && !isPCM(c) {
			t.Errorf("packet %d: payload type %d is not dynamic", i, p.PayloadType)
		}
		wantTS := ts
		if isPCM(c) {
			wantTS += samples
			samples += uint32(len(p.Payload)) / uint32(max(c.Channels, 1))
		}
		if p.Timestamp != wantTS {
			t.Errorf("packet %d: timestamp %d, want %d", i, p.Timestamp, wantTS)
		}
		if c.Kind() == media.KindVideo && p.Marker != (i == len(pkts)-1) {
			t.Errorf("packet %d of %d: marker %v", i, len(pkts), p.Marker)
		}
		au, err := dec(toRTP(p))
		if err != nil {
			t.Fatalf("packet %d: gortsplib depacketizer: %v", i, err)
		}
		if au == nil {
			continue
		}
		if isPCM(c) && got != nil {
			got[0] = append(got[0], au[0]...)
			continue
		}
		if got != nil {
			t.Fatalf("packet %d completes a second access unit", i)
		}
		got = au
		if isPCM(c) {
			got = [][]byte{bytes.Clone(au[0])}
		}
	}
	if !equalAU(got, want) {
		t.Errorf("depacketized %s, want %s", describe(got), describe(want))
	}
}

// isKey reports whether an access unit is a random access point: H264
// IDR, H265 IRAP, VP8 key frame; every audio frame.
func isKey(c media.Codec, au [][]byte) bool {
	switch c.Name() {
	case "H264":
		return mch264.IsRandomAccess(au)
	case "H265":
		return mch265.IsRandomAccess(au)
	case "VP8":
		return au[0][0]&1 == 0
	}
	return c.Kind() == media.KindAudio
}

func equalAU(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func describe(au [][]byte) string {
	s := fmt.Sprintf("%d units:", len(au))
	for _, u := range au {
		s += fmt.Sprintf(" %d bytes %x…", len(u), u[:min(len(u), 3)])
	}
	return s
}

func TestFrameTrackRoundTrip(t *testing.T) {
	for _, c := range frameCases(t) {
		t.Run(c.name, func(t *testing.T) {
			var log packetLog
			const track = 3
			ft, err := NewFrameTrack(c.codec, track, &log, nil)
			if err != nil {
				t.Fatal(err)
			}
			ft.SetParameterSets(c.params...)
			dec := newRTPDecoder(t, c.codec)
			sluiceDec, _ := frame.New(c.codec, track, nil) // nil for the codecs sluice does not depacketize
			var ts0 uint32
			var seq uint16
			keySeen := false // sluice's depacketizer starts at a keyframe
			for i, w := range c.writes {
				n := len(log.pkts)
				if err := ft.Write(w.pts, w.dts, w.au); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
				pkts := log.pkts[n:]
				if i == 0 {
					ts0, seq = pkts[0].Timestamp-rtpTime(w.pts, c.codec.ClockRate), pkts[0].SequenceNumber
				}
				for _, p := range pkts {
					if p.SequenceNumber != seq {
						t.Errorf("write %d: sequence number %d, want %d", i, p.SequenceNumber, seq)
					}
					seq = p.SequenceNumber + 1
				}
				want := w.want
				if want == nil {
					want = w.au
				}
				checkWrite(t, c.codec, track, pkts, ts0+rtpTime(w.pts, c.codec.ClockRate), dec, want)
				keySeen = keySeen || isKey(c.codec, want)
				if sluiceDec != nil {
					checkSluiceFrame(t, sluiceDec, pkts, want, keySeen)
				}
			}
		})
	}
}

// checkSluiceFrame depacketizes with sluice's own depacketizers, what
// the tap gives HLS and recording.
// Before the first keyframe it gives none.
func checkSluiceFrame(t testing.TB, d frame.Depacketizer, pkts []*hub.Packet, want [][]byte, keySeen bool) {
	t.Helper()
	var got *media.Frame
	for _, p := range pkts {
		if f, ok := d.Push(p); ok {
			got = f
		}
	}
	if got == nil {
		if keySeen {
			t.Fatal("sluice's depacketizer gave no frame")
		}
		return
	}
	units := got.NALUs
	if units == nil {
		units = [][]byte{got.Payload}
	}
	if !equalAU(units, want) {
		t.Errorf("sluice's depacketizer: %s, want %s", describe(units), describe(want))
	}
	if got.RTPTimestamp != pkts[0].Timestamp {
		t.Errorf("sluice's depacketizer: timestamp %d, want %d", got.RTPTimestamp, pkts[0].Timestamp)
	}
}

func TestFrameTrackTimestampsFromPTS(t *testing.T) {
	var log packetLog
	ft, err := NewFrameTrack(H264Codec(h264SPS, h264PPS), 0, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A PTS far from the origin: the 90 kHz product of a day in
	// nanoseconds overflows int64 unless scaled apart.
	base := 30 * time.Hour
	for i, pts := range []time.Duration{base, base + dur(40), base + time.Second/3} {
		n := len(log.pkts)
		must(t, ft.Write(pts, pts, [][]byte{{0x41, 0x9a, byte(i)}}))
		if i == 0 {
			continue
		}
		got := log.pkts[n].Timestamp - log.pkts[0].Timestamp
		want := uint32((pts - base) * 90000 / time.Second)
		if got != want {
			t.Errorf("pts %v: timestamp advanced %d, want %d", pts, got, want)
		}
	}
	if rtpTime(30*time.Hour, 90000) != uint32(uint64(30*3600*90000)%(1<<32)) {
		t.Errorf("rtpTime(30h) = %d", rtpTime(30*time.Hour, 90000))
	}
	// Two tracks start from different random origins.
	var log2 packetLog
	ft2, _ := NewFrameTrack(H264Codec(nil, nil), 0, &log2, nil)
	must(t, ft2.Write(base, base, [][]byte{{0x41, 0x9a}}))
	if log2.pkts[0].Timestamp == log.pkts[0].Timestamp && log2.pkts[0].SequenceNumber == log.pkts[0].SequenceNumber {
		t.Error("two tracks share their timestamp and sequence origins")
	}
}

func TestFrameTrackRefuses(t *testing.T) {
	big := make([]byte, 9<<20)
	for _, c := range []struct {
		name  string
		codec media.Codec
		au    [][]byte
	}{
		{"empty access unit", H264Codec(nil, nil), nil},
		{"empty NAL unit", H264Codec(nil, nil), [][]byte{{0x41}, {}}},
		{"H264 STAP-A type", H264Codec(nil, nil), [][]byte{{0x18, 1, 2}}},
		{"H264 start code left in", H264Codec(nil, nil), [][]byte{{0, 0, 0, 1, 0x65}}},
		{"H264 too large", H264Codec(nil, nil), [][]byte{append([]byte{0x65}, big...)}},
		{"too many NAL units", H264Codec(nil, nil), func() [][]byte {
			au := make([][]byte, maxAUElements+1)
			for i := range au {
				au[i] = []byte{0x01, 0x02}
			}
			return au
		}()},
		{"H265 one-byte NAL unit", H265Codec(nil, nil, nil), [][]byte{{0x26}}},
		{"H265 FU type", H265Codec(nil, nil, nil), [][]byte{{0x62, 0x01, 0x00}}},
		{"H265 start code left in", H265Codec(nil, nil, nil), [][]byte{{0, 0, 0, 1, 0x26, 0x01}}},
		{"VP8 two frames", VP8Codec(), [][]byte{{1}, {2}}},
		{"Opus over the MTU", OpusCodec(2), [][]byte{make([]byte, MaxPayloadSize+1)}},
		{"AAC with ADTS header", aacConfig(t), [][]byte{{0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc, 0x21}}},
		{"AAC over 5 KiB", aacConfig(t), [][]byte{make([]byte, 6000)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var log packetLog
			ft, err := NewFrameTrack(c.codec, 0, &log, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = ft.Write(0, 0, c.au)
			if !errors.Is(err, ErrBadAccessUnit) {
				t.Errorf("Write: %v, want ErrBadAccessUnit", err)
			}
			if len(log.pkts) != 0 {
				t.Errorf("%d packets written", len(log.pkts))
			}
		})
	}
}

func TestNewFrameTrackUnsupported(t *testing.T) {
	for _, c := range []media.Codec{
		{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=0"},
		{MimeType: "video/H264", ClockRate: 90000},
		{MimeType: "audio/MPEG4-GENERIC", ClockRate: 48000, Fmtp: "mode=CELP-cbr"},
		{MimeType: "video/JPEG", ClockRate: 90000},
		{MimeType: "audio/opus"},
	} {
		if _, err := NewFrameTrack(c, 0, &packetLog{}, nil); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("%v (clock %d): %v, want ErrUnsupportedCodec", c, c.ClockRate, err)
		}
	}
}

func TestCodecConstructors(t *testing.T) {
	aac := aacConfig(t)
	for _, c := range []struct {
		got  media.Codec
		want media.Codec
	}{
		{H264Codec(h264SPS, h264PPS), media.Codec{MimeType: "video/H264", ClockRate: 90000,
			Fmtp: "packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LAH9oFB+wEQAAAAwBAAAAMg8YMqA==,aM48gA=="}},
		{H264Codec(nil, nil), media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1"}},
		{H265Codec([]byte{0x40, 1}, []byte{0x42, 1}, []byte{0x44, 1}), media.Codec{MimeType: "video/H265", ClockRate: 90000,
			Fmtp: "sprop-pps=RAE=;sprop-sps=QgE=;sprop-vps=QAE="}},
		{aac, media.Codec{MimeType: "audio/MPEG4-GENERIC", ClockRate: 44100, Channels: 2,
			Fmtp: "config=1210;indexdeltalength=3;indexlength=3;mode=AAC-hbr;profile-level-id=1;sizelength=13;streamtype=5"}},
		{OpusCodec(2), media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, Fmtp: "sprop-stereo=1"}},
		{OpusCodec(1), media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, Fmtp: "sprop-stereo=0"}},
		{G711Codec(true, 8000, 1), media.Codec{MimeType: "audio/PCMU", ClockRate: 8000, Channels: 1}},
		{G711Codec(false, 8000, 1), media.Codec{MimeType: "audio/PCMA", ClockRate: 8000, Channels: 1}},
		{VP8Codec(), media.Codec{MimeType: "video/VP8", ClockRate: 90000}},
		{VP9Codec(), media.Codec{MimeType: "video/VP9", ClockRate: 90000, Fmtp: "profile-id=0"}},
		{AV1Codec(), media.Codec{MimeType: "video/AV1", ClockRate: 90000}},
	} {
		if c.got != c.want {
			t.Errorf("got %+v\nwant %+v", c.got, c.want)
		}
	}
	// What WHEP viewers match H264 on: pion offers 42e01f for constrained
	// baseline, which the clip's SPS (x264's 42c01f) is.
	if !media.Compatible(H264Codec(h264SPS, h264PPS), media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1;profile-level-id=42e01f"}) {
		t.Error("H264Codec is not compatible with a constrained baseline viewer")
	}
	for _, c := range []struct {
		sps  []byte
		want string
	}{
		{[]byte{0x67, 0x42, 0xc0, 0x1f}, "42e01f"},
		{[]byte{0x67, 0x42, 0xe0, 0x0d}, "42e00d"},
		{[]byte{0x67, 0x42, 0x00, 0x1e}, "42001e"},
		{[]byte{0x67, 0x4d, 0x40, 0x28}, "4d0028"},
		{[]byte{0x67, 0x4d, 0x80, 0x28}, "42e028"},
		{[]byte{0x67, 0x64, 0x00, 0x33}, "640033"},
		{[]byte{0x67, 0x64, 0x0c, 0x1f}, "640c1f"},
		{[]byte{0x67, 0x6e, 0x00, 0x1f}, "6E001F"}, // High 10: gortsplib's SPS bytes
	} {
		f := media.ParseFmtp(H264Codec(c.sps, nil).Fmtp)
		if f["profile-level-id"] != c.want {
			t.Errorf("SPS %x: profile-level-id=%s, want %s", c.sps, f["profile-level-id"], c.want)
		}
	}
	// The repository's H265 clip: Main profile, Main tier, level 2 (60).
	aus, err := client.ReadH265AccessUnits(mustOpen(t, "../../testdata/h265_main_320x240_25fps_3s.h265"))
	if err != nil {
		t.Fatal(err)
	}
	var vps, sps, pps []byte
	for _, n := range aus[0] {
		switch n[0] >> 1 & 0x3f {
		case 32:
			vps = n
		case 33:
			sps = n
		case 34:
			pps = n
		}
	}
	f := media.ParseFmtp(H265Codec(vps, sps, pps).Fmtp)
	if f["profile-id"] != "1" || f["tier-flag"] != "0" || f["level-id"] != "60" || f["sprop-sps"] == "" {
		t.Errorf("H265 clip: fmtp %v, want profile-id=1, tier-flag=0, level-id=60 and the sprops", f)
	}
	t.Logf("H265 clip: %s", H265Codec(vps, sps, pps).Fmtp)
	if _, err := AACCodec([]byte{0x00}); err == nil {
		t.Error("AACCodec accepted a broken config")
	}
}

// encodeAU writes an access unit as FuzzFrameTrack's input: each unit
// with a 16-bit big-endian length before it.
func encodeAU(au [][]byte) []byte {
	var b []byte
	for _, u := range au {
		b = binary.BigEndian.AppendUint16(b, uint16(len(u)))
		b = append(b, u...)
	}
	return b
}

// decodeAU reads encodeAU's format; a length past the end takes the rest.
func decodeAU(b []byte) [][]byte {
	var au [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		b = b[2:]
		n = min(n, len(b))
		au = append(au, b[:n])
		b = b[n:]
	}
	return au
}

// countHandler counts the records logged at each level.
type countHandler struct {
	mu     sync.Mutex
	counts map[slog.Level]int
}

func (h *countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Level]++
	return nil
}
func (h *countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countHandler) WithGroup(string) slog.Handler      { return h }

func TestFrameTrackWarnsOnceOfBFrames(t *testing.T) {
	for _, bframes := range []bool{false, true} {
		h := &countHandler{counts: map[slog.Level]int{}}
		ft, err := NewFrameTrack(H264Codec(h264SPS, h264PPS), 0, &packetLog{}, slog.New(h))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			pts := dur(40 * i)
			dts := pts
			if bframes {
				pts += dur(80)
			}
			must(t, ft.Write(pts, dts, [][]byte{{0x41, 0x9a, byte(i)}}))
		}
		want := 0
		if bframes {
			want = 1
		}
		if h.counts[slog.LevelWarn] != want {
			t.Errorf("B-frames %v: %d warnings, want %d", bframes, h.counts[slog.LevelWarn], want)
		}
	}
}

// lockedLog is a PacketWriter for several goroutines.
type lockedLog struct {
	mu sync.Mutex
	packetLog
}

func (l *lockedLog) Write(p *hub.Packet) {
	l.mu.Lock()
	l.packetLog.Write(p)
	l.mu.Unlock()
}

func TestFrameTrackConcurrentWriters(t *testing.T) {
	// Parameter sets from one goroutine while another writes (run with
	// -race); the packets of each access unit stay together.
	var log lockedLog
	ft, err := NewFrameTrack(H264Codec(nil, nil), 0, &log, nil)
	if err != nil {
		t.Fatal(err)
	}
	idr := body(70, 5000, 0x65, 0x88)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 200 {
			ft.SetParameterSets(h264SPS, h264PPS)
		}
	})
	wg.Go(func() {
		for i := range 200 {
			if err := ft.Write(dur(40*i), dur(40*i), [][]byte{idr}); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	for i := 1; i < len(log.pkts); i++ {
		a, b := log.pkts[i-1], log.pkts[i]
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, b.SequenceNumber, a.SequenceNumber)
		}
		if a.Timestamp != b.Timestamp && !a.Marker {
			t.Fatalf("packet %d: a new access unit before the last one's marker", i)
		}
	}
}
