// Package framestub stands in for internal/ingest's frame writer (branch
// framewriter) until it lands on main: the same names and signatures, so
// that the RTMP and SRT edges switch to ingest by changing one import.
// It packetizes access units with gortsplib's RTP encoders.
//
// TODO(rtmpsrt): delete this package once ingest.NewFrameTrack is on main.
package framestub

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// payloadMax keeps every packet within a WebRTC viewer's MTU.
const payloadMax = 1200

// PacketWriter takes the packets of a track (a *hub.Stream).
type PacketWriter interface{ Write(p *hub.Packet) }

// FrameTrack packetizes one track's access units into RTP.
type FrameTrack struct {
	c     media.Codec
	track int
	w     PacketWriter
	pt    uint8

	mu       sync.Mutex
	h264     *rtph264.Encoder
	h265     *rtph265.Encoder
	aac      *rtpmpeg4audio.Encoder
	seq      uint16
	params   [][]byte
	started  bool
	firstPTS time.Duration
}

// NewFrameTrack returns the frame writer of track index track.
func NewFrameTrack(c media.Codec, track int, w PacketWriter, log *slog.Logger) (*FrameTrack, error) {
	f := &FrameTrack{c: c, track: track, w: w, pt: 96}
	ssrc := uint32(0x5107ce00 + track)
	seq := uint16(0)
	switch strings.ToUpper(c.Name()) {
	case "H264":
		f.h264 = &rtph264.Encoder{PayloadType: f.pt, SSRC: &ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: payloadMax, PacketizationMode: 1}
		if err := f.h264.Init(); err != nil {
			return nil, err
		}
	case "H265":
		f.h265 = &rtph265.Encoder{PayloadType: f.pt, SSRC: &ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: payloadMax}
		if err := f.h265.Init(); err != nil {
			return nil, err
		}
	case "MPEG4-GENERIC":
		f.aac = &rtpmpeg4audio.Encoder{PayloadType: f.pt, SSRC: &ssrc, InitialSequenceNumber: &seq, PayloadMaxSize: payloadMax,
			SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
		if err := f.aac.Init(); err != nil {
			return nil, err
		}
	case "OPUS", "VP8", "VP9", "PCMU", "PCMA":
	default:
		return nil, fmt.Errorf("frame writer: codec %s not supported", c.Name())
	}
	return f, nil
}

// SetParameterSets gives the parameter sets sent before every keyframe
// that lacks them.
func (f *FrameTrack) SetParameterSets(ps ...[]byte) {
	f.mu.Lock()
	f.params = nil
	for _, p := range ps {
		if len(p) > 0 {
			f.params = append(f.params, slices.Clone(p))
		}
	}
	f.mu.Unlock()
}

// Write packetizes one access unit with presentation time pts.
func (f *FrameTrack) Write(pts, dts time.Duration, au [][]byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(au) == 0 {
		return nil
	}
	if !f.started {
		f.started, f.firstPTS = true, pts
	}
	ts := uint32(int64(pts-f.firstPTS) * int64(f.c.ClockRate) / int64(time.Second))
	var pkts []*rtp.Packet
	var err error
	switch {
	case f.h264 != nil:
		au = slices.DeleteFunc(slices.Clone(au), func(n []byte) bool { return len(n) == 0 })
		if len(au) == 0 {
			return nil
		}
		if h264.IsRandomAccess(au) && !hasNALU(au, func(n []byte) bool { return h264.NALUType(n[0]&0x1f) == h264.NALUTypeSPS }) {
			au = append(slices.Clone(f.params), au...)
		}
		pkts, err = f.h264.Encode(au)
	case f.h265 != nil:
		au = slices.DeleteFunc(slices.Clone(au), func(n []byte) bool { return len(n) < 2 })
		if len(au) == 0 {
			return nil
		}
		if h265.IsRandomAccess(au) && !hasNALU(au, func(n []byte) bool { return h265.NALUType((n[0]>>1)&0x3f) == h265.NALUType_SPS_NUT }) {
			au = append(slices.Clone(f.params), au...)
		}
		pkts, err = f.h265.Encode(au)
	case f.aac != nil:
		pkts, err = f.aac.Encode(au)
	default:
		if len(au[0]) == 0 {
			return nil
		}
		pkts = []*rtp.Packet{{Header: rtp.Header{Marker: true}, Payload: au[0]}}
	}
	if err != nil {
		return err
	}
	for _, p := range pkts {
		seq := p.SequenceNumber
		if f.h264 == nil && f.h265 == nil && f.aac == nil {
			seq = f.seq
			f.seq++
		}
		f.w.Write(&hub.Packet{Track: f.track, Marker: p.Marker, PayloadType: f.pt, SequenceNumber: seq,
			Timestamp: ts, Payload: p.Payload})
	}
	return nil
}

func hasNALU(au [][]byte, is func([]byte) bool) bool {
	for _, n := range au {
		if len(n) > 0 && is(n) {
			return true
		}
	}
	return false
}

// H264Codec is the codec of an H264 track with these parameter sets.
func H264Codec(sps, pps []byte) media.Codec {
	fmtp := "level-asymmetry-allowed=1;packetization-mode=1"
	if len(sps) >= 4 {
		pli := []byte{sps[1], sps[2], sps[3]}
		if pli[0] == 66 && pli[1]&0x40 != 0 {
			// Constrained Baseline (constraint_set1) as browsers write it,
			// "42e0" (RFC 6184 §8.1 table 5), which WebRTC viewers match.
			pli[1] = 0xe0
		}
		fmtp += ";profile-level-id=" + hex.EncodeToString(pli)
	}
	if len(sps) > 0 && len(pps) > 0 {
		fmtp += ";sprop-parameter-sets=" + base64.StdEncoding.EncodeToString(sps) + "," + base64.StdEncoding.EncodeToString(pps)
	}
	return media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: fmtp}
}

// H265Codec is the codec of an H265 track with these parameter sets.
func H265Codec(vps, sps, pps []byte) media.Codec {
	var kv []string
	for _, p := range []struct {
		k string
		v []byte
	}{{"sprop-vps", vps}, {"sprop-sps", sps}, {"sprop-pps", pps}} {
		if len(p.v) > 0 {
			kv = append(kv, p.k+"="+base64.StdEncoding.EncodeToString(p.v))
		}
	}
	return media.Codec{MimeType: "video/H265", ClockRate: 90000, Fmtp: strings.Join(kv, ";")}
}

// AACCodec is the codec of an AAC track (RFC 3640 mpeg4-generic, AAC-hbr)
// with this AudioSpecificConfig.
func AACCodec(config []byte) (media.Codec, error) {
	var asc mpeg4audio.AudioSpecificConfig
	if err := asc.Unmarshal(config); err != nil {
		return media.Codec{}, fmt.Errorf("AAC config: %w", err)
	}
	if asc.SampleRate <= 0 {
		return media.Codec{}, errors.New("AAC config: no sample rate")
	}
	ch := int(asc.ChannelConfig)
	switch {
	case ch == 7:
		ch = 8
	case ch == 0 || ch > 8:
		ch = 2
	}
	fmtp := "config=" + hex.EncodeToString(config) + ";indexdeltalength=3;indexlength=3;mode=AAC-hbr;profile-level-id=1;sizelength=13;streamtype=5"
	return media.Codec{MimeType: "audio/MPEG4-GENERIC", ClockRate: uint32(asc.SampleRate), Channels: uint16(ch), Fmtp: fmtp}, nil
}

// OpusCodec is the codec of an Opus track.
func OpusCodec(channels int) media.Codec {
	fmtp := "minptime=10;useinbandfec=1"
	if channels == 2 {
		fmtp += ";stereo=1;sprop-stereo=1"
	}
	return media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, Fmtp: fmtp}
}
