package tap

import (
	"fmt"

	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// aacSamplesPerAU is the length of one AAC-LC access unit.
const aacSamplesPerAU = mpeg4audio.SamplesPerAccessUnit

// aacDepacketizer rebuilds AAC access units from RFC 3640 (mpeg4-generic)
// packets with gortsplib's decoder.
type aacDepacketizer struct {
	dec *rtpmpeg4audio.Decoder
}

// newAACDepacketizer reads the track's fmtp (config, sizelength…) the way
// an RTSP client reads the SDP.
func newAACDepacketizer(c media.Codec) (*aacDepacketizer, mpeg4audio.AudioSpecificConfig, error) {
	rtpmap := fmt.Sprintf("96 mpeg4-generic/%d", c.ClockRate)
	if c.Channels > 0 {
		rtpmap += fmt.Sprintf("/%d", c.Channels)
	}
	md := &sdp.MediaDescription{
		MediaName:  sdp.MediaName{Media: "audio", Protos: []string{"RTP", "AVP"}, Formats: []string{"96"}},
		Attributes: []sdp.Attribute{{Key: "rtpmap", Value: rtpmap}, {Key: "fmtp", Value: "96 " + c.Fmtp}},
	}
	f, err := format.Unmarshal(md, "96")
	if err != nil {
		return nil, mpeg4audio.AudioSpecificConfig{}, fmt.Errorf("AAC track: %w", err)
	}
	af, ok := f.(*format.MPEG4Audio)
	if !ok || af.Config == nil {
		return nil, mpeg4audio.AudioSpecificConfig{}, fmt.Errorf("AAC track: not AAC-hbr with a config (%s)", c.Fmtp)
	}
	dec, err := af.CreateDecoder()
	if err != nil {
		return nil, mpeg4audio.AudioSpecificConfig{}, fmt.Errorf("AAC track: %w", err)
	}
	return &aacDepacketizer{dec: dec}, *af.Config, nil
}

// decode returns the access units of one packet; none for a packet that
// only continues a fragmented unit, or is damaged.
func (d *aacDepacketizer) decode(p *hub.Packet) [][]byte {
	aus, err := d.dec.Decode(&rtp.Packet{
		Header:  rtp.Header{Marker: p.Marker, SequenceNumber: p.SequenceNumber, Timestamp: p.Timestamp, PayloadType: p.PayloadType},
		Payload: p.Payload,
	})
	if err != nil {
		return nil
	}
	return aus
}
