// The frame writer's codecs: the media.Codec a frame source announces,
// and gortsplib's packetizer for each.

package ingest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph265"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtplpcm"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpsimpleaudio"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp8"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp8"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/vp9"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/media"
)

// Payload types of the packets a FrameTrack writes. Any fixed dynamic
// type does (RFC 3551 §3): every viewer rewrites it to what it
// negotiated. They follow rtc's ingest codecs where those have one;
// G.711 keeps its static types (RFC 3551 Table 4).
const (
	ptVP8  = 96
	ptAAC  = 97
	ptVP9  = 98
	ptAV1  = 99
	ptH264 = 102
	ptOpus = 111
	ptH265 = 116
	ptPCMU = 0
	ptPCMA = 8
)

// maxG711Bytes bounds the samples of one G.711 write: a second of 48 kHz
// stereo.
const maxG711Bytes = 96000

// AAC-hbr's AU header sizes (RFC 3640 §3.3.6), what every AAC RTP sender
// uses.
const (
	aacSizeLength       = 13
	aacIndexLength      = 3
	aacIndexDeltaLength = 3
)

// H264Codec returns the codec of an H264 frame source (RFC 6184): 90 kHz,
// packetization-mode=1 and, from the SPS, profile-level-id and
// sprop-parameter-sets. sps and pps may be nil when not known yet.
//
// profile-level-id names the SPS's profile as WebRTC peers write it
// (constrained baseline 42e0, baseline 4200, main 4d00, high 6400,
// constrained high 640c, then the level): pion matches those bytes
// exactly, so an encoder's own constraint flags (42c0 for constrained
// baseline from x264) would match no viewer. The SPS itself is sent
// unchanged; decoders read the profile there.
func H264Codec(sps, pps []byte) media.Codec {
	f := &format.H264{PayloadTyp: ptH264, SPS: sps, PPS: pps, PacketizationMode: 1}
	fmtp := f.FMTP()
	if id, ok := webrtcProfileLevelID(sps); ok {
		fmtp["profile-level-id"] = id
	}
	return media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: fmtpLine(fmtp)}
}

// h264Profiles are libwebrtc's profile patterns (h264_profile_level_id.cc,
// after RFC 6184 §8.1 Table 5): profile_idc, and which bits of
// profile-iop must be set (value) among those that matter (mask); the
// first match gives the profile-level-id prefix WebRTC peers write.
var h264Profiles = []struct {
	idc, mask, value byte
	prefix           string
}{
	{0x42, 0x4f, 0x40, "42e0"}, // constrained baseline: x1xx0000
	{0x4d, 0x8f, 0x80, "42e0"}, // constrained baseline: 1xxx0000
	{0x58, 0xcf, 0xc0, "42e0"}, // constrained baseline: 11xx0000
	{0x42, 0x4f, 0x00, "4200"}, // baseline: x0xx0000
	{0x58, 0xcf, 0x80, "4200"}, // baseline: 10xx0000
	{0x4d, 0xaf, 0x00, "4d00"}, // main: 0x0x0000
	{0x64, 0xff, 0x00, "6400"}, // high
	{0x64, 0xff, 0x0c, "640c"}, // constrained high
	{0xf4, 0xff, 0x00, "f400"}, // predictive high 4:4:4
}

// webrtcProfileLevelID is the profile-level-id WebRTC peers write for the
// profile and level of an SPS; false for an SPS too short or of a profile
// libwebrtc does not name.
func webrtcProfileLevelID(sps []byte) (string, bool) {
	if len(sps) < 4 {
		return "", false
	}
	for _, p := range h264Profiles {
		if sps[1] == p.idc && sps[2]&p.mask == p.value {
			return p.prefix + fmt.Sprintf("%02x", sps[3]), true
		}
	}
	return "", false
}

// H265Codec returns the codec of an H265 frame source (RFC 7798): 90 kHz,
// with sprop-vps, sprop-sps and sprop-pps for the sets given (nil ones are
// left out) and, from an SPS that parses, profile-id, tier-flag and
// level-id: WebRTC peers match on the first two, taking Main (1) and
// Main tier (0) where they are absent (draft-ietf-avtcore-hevc-webrtc §2.1).
func H265Codec(vps, sps, pps []byte) media.Codec {
	f := &format.H265{PayloadTyp: ptH265, VPS: vps, SPS: sps, PPS: pps}
	fmtp := f.FMTP()
	var s h265.SPS
	if sps != nil && s.Unmarshal(sps) == nil {
		ptl := s.ProfileTierLevel
		fmtp["profile-id"] = strconv.Itoa(int(ptl.GeneralProfileIdc))
		fmtp["tier-flag"] = strconv.Itoa(int(ptl.GeneralTierFlag))
		fmtp["level-id"] = strconv.Itoa(int(ptl.GeneralLevelIdc))
	}
	return media.Codec{MimeType: "video/H265", ClockRate: 90000, Fmtp: fmtpLine(fmtp)}
}

// AACCodec returns the codec of an AAC frame source from its
// AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1, as in RTMP's AAC sequence
// header): audio/MPEG4-GENERIC at the config's sample rate and channels,
// with the RFC 3640 AAC-hbr fmtp.
func AACCodec(config []byte) (media.Codec, error) {
	var asc mpeg4audio.AudioSpecificConfig
	if err := asc.Unmarshal(config); err != nil {
		return media.Codec{}, fmt.Errorf("AAC AudioSpecificConfig: %w", err)
	}
	f := &format.MPEG4Audio{
		PayloadTyp: ptAAC, ProfileLevelID: 1, Config: &asc,
		SizeLength: aacSizeLength, IndexLength: aacIndexLength, IndexDeltaLength: aacIndexDeltaLength,
	}
	// RTPMap is "mpeg4-generic/rate/channels", with the channel count
	// that implicit signalling (SBR, PS) implies.
	rm := f.RTPMap()
	ch, _ := strconv.Atoi(rm[strings.LastIndexByte(rm, '/')+1:])
	return media.Codec{
		MimeType: "audio/MPEG4-GENERIC", ClockRate: uint32(f.ClockRate()), Channels: uint16(ch),
		Fmtp: fmtpLine(f.FMTP()),
	}, nil
}

// OpusCodec returns the codec of an Opus frame source (RFC 7587): always
// opus/48000/2 in SDP, with sprop-stereo=1 when channels is 2.
func OpusCodec(channels int) media.Codec {
	f := &format.Opus{PayloadTyp: ptOpus, ChannelCount: min(max(channels, 1), 2)}
	return media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2, Fmtp: fmtpLine(f.FMTP())}
}

// G711Codec returns the codec of a G.711 frame source: audio/PCMU (µ-law)
// or audio/PCMA (A-law) at the given sample rate and channels (8000 and 1
// in RFC 3551; RTMP and MPEG-TS carry others).
func G711Codec(mulaw bool, sampleRate, channels int) media.Codec {
	mime := "audio/PCMA"
	if mulaw {
		mime = "audio/PCMU"
	}
	return media.Codec{MimeType: mime, ClockRate: uint32(sampleRate), Channels: uint16(channels)}
}

// VP8Codec returns the codec of a VP8 frame source (RFC 7741).
func VP8Codec() media.Codec { return media.Codec{MimeType: "video/VP8", ClockRate: 90000} }

// VP9Codec returns the codec of a VP9 frame source (RFC 9628), profile 0
// (what WebRTC peers assume when profile-id is absent, written out).
func VP9Codec() media.Codec {
	zero := 0
	f := &format.VP9{PayloadTyp: ptVP9, ProfileID: &zero}
	return media.Codec{MimeType: "video/VP9", ClockRate: 90000, Fmtp: fmtpLine(f.FMTP())}
}

// AV1Codec returns the codec of an AV1 frame source (the AOM RTP payload
// format).
func AV1Codec() media.Codec { return media.Codec{MimeType: "video/AV1", ClockRate: 90000} }

// fmtpLine writes fmtp parameters as an a=fmtp line's list, sorted by
// name.
func fmtpLine(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

// packetizer is one of gortsplib's RTP encoders. Packets' timestamps are
// offsets from the access unit's (0 for most); sequence numbers and SSRC
// are the FrameTrack's business.
type packetizer interface {
	encode(au [][]byte) ([]*rtp.Packet, error)
}

// packetizerFor is what NewFrameTrack needs to know of a codec.
type packetizerFor struct {
	packetizer
	payloadType uint8
	limit       int      // most bytes in one access unit
	one         bool     // the access unit is exactly one element
	nal         nalCodec // H264, H265: parameter sets to keep
}

// newPacketizer returns gortsplib's packetizer for c, with payloads of at
// most MaxPayloadSize bytes.
func newPacketizer(c media.Codec) (packetizerFor, error) {
	fmtp := media.ParseFmtp(c.Fmtp)
	var p packetizerFor
	var err error
	switch name := strings.ToUpper(c.Name()); name {
	case "H264":
		if m := fmtp["packetization-mode"]; m != "1" {
			// Mode 0 forbids FU-A, and an access unit rarely fits one
			// packet; mode 2 is interleaved.
			return p, fmt.Errorf("%w H264 with packetization-mode=%q: only 1 is packetized", ErrUnsupportedCodec, m)
		}
		e := &rtph264.Encoder{PayloadType: ptH264, PayloadMaxSize: MaxPayloadSize, PacketizationMode: 1}
		err = e.Init()
		p = packetizerFor{packetizer: nalEncoder{e.Encode}, payloadType: ptH264, limit: h264.MaxAccessUnitSize, nal: h264NAL{}}
	case "H265", "HEVC":
		e := &rtph265.Encoder{PayloadType: ptH265, PayloadMaxSize: MaxPayloadSize}
		err = e.Init()
		p = packetizerFor{packetizer: nalEncoder{e.Encode}, payloadType: ptH265, limit: h265.MaxAccessUnitSize, nal: h265NAL{}}
	case "AV1":
		e := &rtpav1.Encoder{PayloadType: ptAV1, PayloadMaxSize: MaxPayloadSize}
		err = e.Init()
		p = packetizerFor{packetizer: nalEncoder{e.Encode}, payloadType: ptAV1, limit: av1.MaxTemporalUnitSize}
	case "VP8":
		e := &rtpvp8.Encoder{PayloadType: ptVP8, PayloadMaxSize: MaxPayloadSize}
		err = e.Init()
		p = packetizerFor{packetizer: frameEncoder{e.Encode}, payloadType: ptVP8, limit: vp8.MaxFrameSize, one: true}
	case "VP9":
		e := &rtpvp9.Encoder{PayloadType: ptVP9, PayloadMaxSize: MaxPayloadSize}
		err = e.Init()
		p = packetizerFor{packetizer: frameEncoder{e.Encode}, payloadType: ptVP9, limit: vp9.MaxFrameSize, one: true}
	case "OPUS":
		e := &rtpsimpleaudio.Encoder{PayloadType: ptOpus, PayloadMaxSize: MaxPayloadSize}
		err = e.Init()
		// RFC 7587 has no fragmentation: a packet goes whole or not at all.
		p = packetizerFor{packetizer: &packetEncoder{enc: e.Encode}, payloadType: ptOpus, limit: MaxPayloadSize, one: true}
	case "MPEG4-GENERIC":
		e, perr := aacEncoder(fmtp)
		if perr != nil {
			return p, perr
		}
		err = e.Init()
		// An access unit's size must fit its AU header's size field.
		limit := min(mpeg4audio.MaxAccessUnitSize, 1<<e.SizeLength-1)
		p = packetizerFor{packetizer: nalEncoder{e.Encode}, payloadType: ptAAC, limit: limit, one: true}
	case "PCMU", "PCMA":
		pt := uint8(ptPCMA)
		if name == "PCMU" {
			pt = ptPCMU
		}
		ch := max(int(c.Channels), 1)
		// G.711 is 8 bits a sample (format.G711 uses rtplpcm so).
		e := &rtplpcm.Encoder{PayloadType: pt, BitDepth: 8, ChannelCount: ch, PayloadMaxSize: MaxPayloadSize}
		err = e.Init()
		p = packetizerFor{packetizer: frameEncoder{e.Encode}, payloadType: pt, limit: maxG711Bytes, one: true}
	default:
		return p, fmt.Errorf("%w %s", ErrUnsupportedCodec, c.Name())
	}
	if err != nil {
		return p, fmt.Errorf("%w %s: %v", ErrUnsupportedCodec, c.Name(), err)
	}
	return p, nil
}

// aacEncoder is the RFC 3640 encoder for the AU header sizes of an
// MPEG4-GENERIC fmtp (AAC-hbr's when absent).
func aacEncoder(fmtp map[string]string) (*rtpmpeg4audio.Encoder, error) {
	if m := fmtp["mode"]; m != "" && !strings.EqualFold(m, "AAC-hbr") {
		return nil, fmt.Errorf("%w MPEG4-GENERIC mode %s: only AAC-hbr is packetized", ErrUnsupportedCodec, m)
	}
	e := &rtpmpeg4audio.Encoder{
		PayloadType: ptAAC, PayloadMaxSize: MaxPayloadSize,
		SizeLength: aacSizeLength, IndexLength: aacIndexLength, IndexDeltaLength: aacIndexDeltaLength,
	}
	for k, v := range map[string]*int{"sizelength": &e.SizeLength, "indexlength": &e.IndexLength, "indexdeltalength": &e.IndexDeltaLength} {
		if s, ok := fmtp[k]; ok {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 || n > 32 {
				return nil, fmt.Errorf("%w MPEG4-GENERIC: %s=%q", ErrUnsupportedCodec, k, s)
			}
			*v = n
		}
	}
	if e.SizeLength == 0 {
		return nil, fmt.Errorf("%w MPEG4-GENERIC: sizelength=0", ErrUnsupportedCodec)
	}
	return e, nil
}

// nalEncoder packetizes a list of units (NAL units, OBUs, AAC access
// units).
type nalEncoder struct {
	enc func([][]byte) ([]*rtp.Packet, error)
}

func (e nalEncoder) encode(au [][]byte) ([]*rtp.Packet, error) { return e.enc(au) }

// frameEncoder packetizes one frame into one or more packets.
type frameEncoder struct {
	enc func([]byte) ([]*rtp.Packet, error)
}

func (e frameEncoder) encode(au [][]byte) ([]*rtp.Packet, error) { return e.enc(au[0]) }

// packetEncoder packetizes one frame into one packet.
type packetEncoder struct {
	enc func([]byte) (*rtp.Packet, error)
	out [1]*rtp.Packet
}

func (e *packetEncoder) encode(au [][]byte) ([]*rtp.Packet, error) {
	p, err := e.enc(au[0])
	e.out[0] = p
	return e.out[:], err
}
