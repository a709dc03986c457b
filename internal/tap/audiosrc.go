package tap

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/transcode"
)

// The audio a transcoder decodes: AAC in RTP (RFC 3640, "MPEG4-GENERIC",
// as RTSP cameras send it and the frame writer packetizes RTMP and SRT
// audio), G.711 (RFC 3551: PCMU, PCMA) and Opus (RFC 7587, for G.711
// out), each turned into PCM with its RTP timestamp.

// aacParams are what an MPEG4-GENERIC fmtp says (RFC 3640 §4.1).
type aacParams struct {
	asc                                  []byte
	config                               mpeg4audio.AudioSpecificConfig
	sizeLength, indexLength, deltaLength int
}

// isAAC reports whether c is AAC in RTP (RFC 3640).
func isAAC(c media.Codec) bool { return strings.EqualFold(c.Name(), "MPEG4-GENERIC") }

// isG711 reports whether c is G.711, and which law.
func isG711(c media.Codec) (ok, mulaw bool) {
	switch strings.ToUpper(c.Name()) {
	case "PCMU":
		return true, true
	case "PCMA":
		return true, false
	}
	return false, false
}

// parseAAC reads an MPEG4-GENERIC fmtp.
func parseAAC(c media.Codec) (aacParams, error) {
	f := media.ParseFmtp(c.Fmtp)
	var p aacParams
	asc, err := hex.DecodeString(f["config"])
	if err != nil || len(asc) == 0 {
		return p, fmt.Errorf("AAC fmtp %q: no config", c.Fmtp)
	}
	if err := p.config.Unmarshal(asc); err != nil {
		return p, fmt.Errorf("AAC config %x: %w", asc, err)
	}
	p.asc = asc
	num := func(k string, def int) int {
		if v, err := strconv.Atoi(f[k]); err == nil {
			return v
		}
		return def
	}
	// RFC 3640 §3.3.6 (AAC-hbr) values where the fmtp leaves them out.
	p.sizeLength, p.indexLength, p.deltaLength = num("sizelength", 13), num("indexlength", 3), num("indexdeltalength", 3)
	return p, nil
}

// aacChannels is the channel count of an AAC config.
func aacChannels(c mpeg4audio.AudioSpecificConfig) int {
	if c.ChannelConfig == 0 {
		return c.ChannelCount
	}
	if c.ChannelConfig == 7 {
		return 8
	}
	return int(c.ChannelConfig)
}

// isOpus reports whether c is Opus in RTP (48 kHz clock, RFC 7587).
func isOpus(c media.Codec) bool {
	return strings.EqualFold(c.Name(), "opus") && c.ClockRate == transcode.SampleRate
}

// sourceFormat is the rate and channels of a track the transcoders take,
// or an error saying why it is not one.
func sourceFormat(c media.Codec) (rate, channels int, err error) {
	if isOpus(c) {
		return transcode.SampleRate, transcode.ChannelsFromFmtp(c.Fmtp), nil
	}
	if ok, _ := isG711(c); ok {
		ch := int(c.Channels)
		if ch == 0 {
			ch = 1
		}
		if ch > 2 || c.ClockRate == 0 {
			return 0, 0, fmt.Errorf("%s with %d channels at %d Hz", c.Name(), ch, c.ClockRate)
		}
		return int(c.ClockRate), ch, nil
	}
	if isAAC(c) {
		p, err := parseAAC(c)
		if err != nil {
			return 0, 0, err
		}
		if p.config.Type != mpeg4audio.ObjectTypeAACLC {
			return 0, 0, fmt.Errorf("AAC object type %d (only AAC-LC is transcoded)", p.config.Type)
		}
		ch := aacChannels(p.config)
		if ch < 1 || ch > 2 {
			return 0, 0, fmt.Errorf("AAC with %d channels (1 or 2 are transcoded)", ch)
		}
		return p.config.SampleRate, ch, nil
	}
	return 0, 0, fmt.Errorf("%s is not transcoded", c.Name())
}

// aacDepacketizer rebuilds AAC access units from RFC 3640 packets
// (gortsplib's decoder: AU headers, fragments, interleaving-free).
type aacDepacketizer struct {
	d   rtpmpeg4audio.Decoder
	pkt rtp.Packet
}

func newAACDepacketizer(p aacParams) *aacDepacketizer {
	a := &aacDepacketizer{d: rtpmpeg4audio.Decoder{SizeLength: p.sizeLength, IndexLength: p.indexLength, IndexDeltaLength: p.deltaLength}}
	_ = a.d.Init() // it cannot fail
	return a
}

// units returns the access units a packet completes; the first is at
// the packet's timestamp, the others each 1024 samples later. A packet
// that completes none (a fragment) or is damaged gives none.
func (a *aacDepacketizer) units(p *hub.Packet) [][]byte {
	a.pkt.Header = rtp.Header{Marker: p.Marker, SequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp}
	a.pkt.Payload = p.Payload
	aus, err := a.d.Decode(&a.pkt)
	if err != nil {
		return nil
	}
	return aus
}

// pcmSource decodes one track's RTP packets to PCM.
type pcmSource struct {
	rate, channels int
	mulaw          *bool // G.711
	aac            *aacDepacketizer
	dec            *transcode.AACDecoder
	opus           transcode.Decoder
	buf            []float32
}

func newPCMSource(c media.Codec) (*pcmSource, error) {
	rate, ch, err := sourceFormat(c)
	if err != nil {
		return nil, err
	}
	s := &pcmSource{rate: rate, channels: ch}
	if ok, mu := isG711(c); ok {
		s.mulaw = &mu
		return s, nil
	}
	if isOpus(c) {
		if s.opus, err = transcode.NewOpusDecoder(ch); err != nil {
			return nil, err
		}
		s.buf = make([]float32, transcode.SampleRate*120/1000*ch) // the longest packet
		return s, nil
	}
	p, _ := parseAAC(c)
	s.aac = newAACDepacketizer(p)
	if s.dec, err = transcode.NewAACDecoder(p.asc); err != nil {
		return nil, err
	}
	return s, nil
}

// push decodes a packet and calls emit with each block of samples
// (interleaved, s.channels) and its RTP timestamp. A packet the decoder
// rejects is skipped, as a lost one is: the next one's timestamp says how
// long the gap is, which the encoder's side fills with silence.
func (s *pcmSource) push(p *hub.Packet, emit func(pcm []float32, ts uint32) error) error {
	if s.opus != nil {
		if len(p.Payload) == 0 {
			return nil
		}
		n, err := s.opus.Decode(p.Payload, false, s.buf)
		if err != nil || n == 0 {
			return nil
		}
		return emit(s.buf[:n*s.channels], p.Timestamp)
	}
	if s.mulaw != nil {
		if len(p.Payload) == 0 {
			return nil
		}
		s.buf = transcode.DecodeG711(s.buf[:0], p.Payload, *s.mulaw)
		return emit(s.buf, p.Timestamp)
	}
	for i, au := range s.aac.units(p) {
		pcm, ch, err := s.dec.Decode(au)
		if err != nil || len(pcm) == 0 {
			continue
		}
		if ch != s.channels {
			return fmt.Errorf("AAC decoder gave %d channels, the config says %d", ch, s.channels)
		}
		if err := emit(pcm, p.Timestamp+uint32(i*mpeg4audio.SamplesPerAccessUnit)); err != nil {
			return err
		}
	}
	return nil
}

func (s *pcmSource) close() {
	if s.dec != nil {
		s.dec.Close()
	}
	if s.opus != nil {
		s.opus.Close()
	}
}
