package rtc

import (
	"fmt"
	"slices"
	"strings"

	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/media"
)

var videoFeedback = []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}

// ingestCodecs are the codecs a PeerConnection made by NewPublisherPC
// receives (a cluster edge's pull, which makes the offer), in sluice's
// order of preference. H264 comes in the profile/packetization-mode pairs
// browsers offer, since pion matches them by bytes. A WHIP publisher's
// PeerConnection instead takes the one codec per section SelectIngest
// chose from its offer.
var ingestCodecs = func() []webrtc.RTPCodecParameters {
	c := []webrtc.RTPCodecParameters{{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
		PayloadType:        111,
	}}
	pt := webrtc.PayloadType(102)
	for _, profile := range []string{"42e01f", "42001f", "4d001f", "640c1f", "64001f"} {
		for _, mode := range []string{"1", "0"} {
			c = append(c, webrtc.RTPCodecParameters{
				RTPCodecCapability: webrtc.RTPCodecCapability{
					MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
					SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=" + mode + ";profile-level-id=" + profile,
					RTCPFeedback: videoFeedback,
				},
				PayloadType: pt,
			})
			pt++
		}
	}
	c = append(c,
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: videoFeedback},
			PayloadType:        116,
		},
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback},
			PayloadType:        96,
		},
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=0", RTCPFeedback: videoFeedback},
			PayloadType:        124,
		},
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, ClockRate: 90000, SDPFmtpLine: "profile-id=2", RTCPFeedback: videoFeedback},
			PayloadType:        125,
		},
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeAV1, ClockRate: 90000, SDPFmtpLine: "level-idx=5;profile=0;tier=0", RTCPFeedback: videoFeedback},
			PayloadType:        45,
		},
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
			PayloadType:        0,
		},
		webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000},
			PayloadType:        8,
		},
	)
	return withRTX(c, rtxPayloadTypes)
}()

// rtxPayloadTypes are the payload types left free by ingestCodecs, for
// their RTX codecs.
var rtxPayloadTypes = []webrtc.PayloadType{97, 98, 99, 100, 101, 112, 113, 114, 115, 117, 118, 119, 120, 121, 122, 123}

// withRTX adds an RTX codec (RFC 4588, "apt=" the original payload type)
// for each video codec, numbered from pts. A publisher that offers RTX then
// retransmits on a separate SSRC; pion's RTPReceiver turns those packets
// back into the originals (payload type, SSRC, sequence number) and
// TrackRemote.Read returns them among the media packets, so that they reach
// the reorder window like any other.
func withRTX(codecs []webrtc.RTPCodecParameters, pts []webrtc.PayloadType) []webrtc.RTPCodecParameters {
	out := codecs
	for _, c := range codecs {
		if kindOf(c.MimeType) != webrtc.RTPCodecTypeVideo || len(pts) == 0 {
			continue
		}
		out = append(out, webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: c.ClockRate, SDPFmtpLine: fmt.Sprintf("apt=%d", c.PayloadType)},
			PayloadType:        pts[0],
		})
		pts = pts[1:]
	}
	return out
}

// AcceptedCodecs names what a publisher may send, for error messages.
const AcceptedCodecs = "H264, H265, VP8, VP9, AV1, Opus, PCMU, PCMA"

// NewPublisherPC returns a PeerConnection for a WHIP publisher: it accepts
// the ingest codecs (with RTX), sends receiver reports, and gives the
// publisher transport-wide congestion feedback so browsers ramp up bitrate.
// NACKs are not generated here but by the whip session from its reorder
// window: pion's generator never sees packets repaired over RTX (they
// arrive on the RTX SSRC) and would ask for them again and again.
// obs, if not nil, sees the tracks and every RTCP packet sent (metrics).
func (e *Engine) NewPublisherPC(obs RTCPObserver) (*webrtc.PeerConnection, error) {
	return e.newPublisherPC(obs, ingestCodecs, e.settings)
}

// NewDirectPublisherPC is NewPublisherPCFor with the connection's direct
// path (Direct), through which a connected publisher can be detached from
// pion: sluice then reads its SRTP itself (DetachConfig.OnRTP). The
// Direct is nil when the offer leaves sluice no way to be the DTLS server
// (a=setup:passive).
func (e *Engine) NewDirectPublisherPC(obs RTCPObserver, codecs []webrtc.RTPCodecParameters, offer *sdp.SessionDescription) (*webrtc.PeerConnection, *Direct, error) {
	if offeredSetup(offer) == "passive" {
		pc, err := e.newPublisherPC(obs, codecs, e.settings)
		return pc, nil, err
	}
	d := &Direct{engine: e}
	s, err := d.settings(e.settings)
	if err != nil {
		return nil, nil, err
	}
	pc, err := e.newPublisherPC(obs, codecs, s)
	if err != nil {
		return nil, nil, err
	}
	return pc, d, nil
}

func (e *Engine) newPublisherPC(obs RTCPObserver, codecs []webrtc.RTPCodecParameters, s webrtc.SettingEngine) (*webrtc.PeerConnection, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := m.RegisterCodec(c, kindOf(c.MimeType)); err != nil {
			return nil, fmt.Errorf("%w: payload type %d: %v", ErrBadOffer, c.PayloadType, err)
		}
	}
	ir := &interceptor.Registry{}
	ir.Add(headerFactory{}) // innermost: parses each packet's header once, into one header per stream
	if obs != nil {
		ir.Add(observeFactory{obs}) // sees all RTCP sent
	}
	if err := webrtc.ConfigureRTCPReports(ir); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(m, ir); err != nil {
		return nil, err
	}
	// Simulcast (RFC 8853): layers are told apart by the RID header
	// extension; the MID extension maps SSRCs not in the SDP to sections.
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, err
	}
	return e.newPeerConnection(s, m, ir)
}

// NewViewerPC returns a PeerConnection for a WHEP viewer that can send
// exactly the given codecs (the publisher's), and RTX for the video ones.
// It has no interceptors, so no goroutine or per-packet work of its own:
// whep answers viewer NACKs from the stream's ring, which every viewer
// shares, instead of a per-viewer copy of each packet, and its egress
// workers send the RTCP sender reports. With bwe, the viewer is asked for
// congestion feedback: one interceptor (no goroutine) puts transport-wide
// sequence numbers on every packet (draft-holmer-rmcat-transport-wide-cc-
// extensions-01) and REMB is offered; whep estimates the viewer's
// bandwidth from what comes back.
//
// It also returns the connection's direct RTP path (Direct), to be
// started once connected (with bwe, given the TWCC extension's ID: the
// interceptor numbers only what goes through pion). It is nil when the
// offer leaves sluice no way to be the DTLS server (a=setup:passive).
func (e *Engine) NewViewerPC(codecs []media.Codec, bwe bool, offer *sdp.SessionDescription) (*webrtc.PeerConnection, *Direct, error) {
	m := &webrtc.MediaEngine{}
	rtxPT := webrtc.PayloadType(96 + len(codecs))
	for i, c := range codecs {
		var fb []webrtc.RTCPFeedback
		if c.Kind() == media.KindVideo {
			fb = videoFeedback
			if bwe {
				fb = append(slices.Clip(fb), webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBTransportCC}, webrtc.RTCPFeedback{Type: webrtc.TypeRTCPFBGoogREMB})
			}
		}
		p := webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: c.MimeType, ClockRate: c.ClockRate, Channels: c.Channels,
				SDPFmtpLine: c.Fmtp, RTCPFeedback: fb,
			},
			PayloadType: webrtc.PayloadType(96 + i),
		}
		if err := m.RegisterCodec(p, kindOf(c.MimeType)); err != nil {
			return nil, nil, fmt.Errorf("register %s: %w", c, err)
		}
		if c.Kind() == media.KindVideo {
			rtx := withRTX([]webrtc.RTPCodecParameters{p}, []webrtc.PayloadType{rtxPT})[1]
			rtxPT++
			if err := m.RegisterCodec(rtx, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, nil, fmt.Errorf("register RTX for %s: %w", c, err)
			}
		}
	}
	ir := &interceptor.Registry{}
	if bwe {
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, ir); err != nil {
			return nil, nil, err
		}
	}
	if offeredSetup(offer) == "passive" {
		pc, err := e.newPeerConnection(e.settings, m, ir)
		return pc, nil, err
	}
	d := &Direct{engine: e}
	s, err := d.settings(e.settings)
	if err != nil {
		return nil, nil, err
	}
	pc, err := e.newPeerConnection(s, m, ir)
	if err != nil {
		return nil, nil, err
	}
	return pc, d, nil
}

// offeredSetup is the offer's a=setup value (RFC 8842): of the first media
// section that has one, else of the session.
func offeredSetup(d *sdp.SessionDescription) string {
	for _, m := range d.MediaDescriptions {
		if v, ok := m.Attribute("setup"); ok {
			return v
		}
	}
	v, _ := d.Attribute("setup")
	return v
}

// SimulcastRIDs returns the RIDs a media section of an offer sends as
// simulcast layers (RFC 8853 "a=simulcast:send", RFC 8851 "a=rid"), in the
// order a=simulcast lists them; nil when the section sends no simulcast.
// Alternatives ("a,b") count once, by their first RID; paused ones ("~a")
// are left out.
func SimulcastRIDs(d *sdp.SessionDescription, mid string) []string {
	for _, m := range d.MediaDescriptions {
		if v, _ := m.Attribute("mid"); v != mid {
			continue
		}
		sim, ok := m.Attribute("simulcast")
		if !ok {
			return nil
		}
		f := strings.Fields(sim)
		for i := 0; i+1 < len(f); i += 2 {
			if f[i] != "send" {
				continue
			}
			var rids []string
			for _, alt := range strings.Split(f[i+1], ";") {
				first, _, _ := strings.Cut(alt, ",")
				if first != "" && !strings.HasPrefix(first, "~") {
					rids = append(rids, first)
				}
			}
			return rids
		}
		return nil
	}
	return nil
}

func kindOf(mime string) webrtc.RTPCodecType {
	if (media.Codec{MimeType: mime}).Kind() == media.KindAudio {
		return webrtc.RTPCodecTypeAudio
	}
	return webrtc.RTPCodecTypeVideo
}

// CodecOf converts pion's codec parameters to sluice's.
func CodecOf(p webrtc.RTPCodecParameters) media.Codec {
	return media.Codec{MimeType: p.MimeType, ClockRate: p.ClockRate, Channels: p.Channels, Fmtp: p.SDPFmtpLine}
}
