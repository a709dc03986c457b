package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
)

// DefaultH264Fmtp is the fmtp line a Publisher offers for H264 when
// PublishOptions.H264Fmtp is empty: constrained baseline, level 3.1,
// non-interleaved mode (RFC 6184 §8.1).
const DefaultH264Fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

// DefaultMTU is the largest RTP payload a Publisher writes when
// PublishOptions.MTU is 0; it leaves room for SRTP and header extensions
// inside a 1280-byte IPv6 minimum MTU.
const DefaultMTU = 1200

// PublishOptions configures Publish.
type PublishOptions struct {
	// HTTPClient sends the offer and the DELETE; nil means a client
	// without keep-alives, so that no idle connection outlives Close.
	HTTPClient *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>" with
	// every request of the session (POST, PATCH, DELETE).
	Token string
	// Trickle sends the offer before ICE gathering, without candidates,
	// and then each candidate in a PATCH and a final a=end-of-candidates
	// (RFC 9725 §4.4.1); every PATCH must be answered 204. Without it the
	// offer carries every candidate.
	Trickle bool
	// NoVideo and NoAudio leave out the H264 or the Opus track.
	NoVideo, NoAudio bool
	// H264Fmtp is the fmtp line offered for H264; DefaultH264Fmtp if empty.
	H264Fmtp string
	// AudioCodec makes the audio track webrtc.MimeTypePCMU or
	// webrtc.MimeTypePCMA (G.711, 8 kHz, static payload type 0 or 8),
	// written with WriteOpus all the same; empty means Opus.
	AudioCodec string
	// OpusFmtp is the fmtp line offered for Opus (say, with "stereo=1;
	// sprop-stereo=1"); "minptime=10;useinbandfec=1" if empty.
	OpusFmtp string
	// MTU is the largest RTP payload written; DefaultMTU if 0.
	MTU int
	// LocalIPs restricts the ICE host candidates. Empty means all
	// interfaces, or loopback only when the URL's host is a loopback one.
	LocalIPs []string
	// H265 makes the video track H265 (RFC 7798, profile-id 1), written
	// with WriteH265, instead of H264.
	H265 bool
	// VP9 makes the video track VP9 (RFC 9628, profile-id 0), written
	// with WriteVP9, instead of H264.
	VP9 bool
	// AV1 makes the video track AV1 (the AOM RTP payload format, profile
	// 0), written with WriteAV1, instead of H264.
	AV1 bool
	// VideoFeedback is the RTCP feedback offered for video; nil offers
	// NACK, PLI and FIR like a browser.
	VideoFeedback []webrtc.RTCPFeedback
	// RTX offers RTX for video (RFC 4588): pion's NACK responder then
	// retransmits on a separate SSRC instead of the media SSRC.
	RTX bool
	// WrapConn, if set, wraps the one UDP socket the publisher uses, for
	// tests that impair the network. It needs LocalIPs or a loopback URL.
	WrapConn WrapConn
	// NoSenderReports leaves out pion's RTCP sender reports; the caller
	// sends its own with WriteSenderReport.
	NoSenderReports bool
	// Simulcast, if not empty, sends the H264 video as one simulcast layer
	// per RID (RFC 8853), written with WriteH264Layer, the way browsers
	// do: a=simulcast and a=rid in the offer, no a=ssrc for the video,
	// and the MID and RID header extensions on every packet.
	Simulcast []string
	// TransportCC puts transport-wide sequence numbers on every packet
	// (draft-holmer-rmcat-transport-wide-cc-extensions-01), as a
	// browser's congestion controller does, so that the server sends
	// TWCC feedback (counted by TWCCFeedback).
	TransportCC bool
	// ICETCP gathers ICE-TCP candidates only (active ones, RFC 6544), for
	// servers with ICE-TCP on; UDP is not tried.
	ICETCP bool
}

// videoPayloader packetizes one NAL unit (pion's H264 and H265
// payloaders) or one VP9 frame (pion's VP9 payloader).
type videoPayloader interface {
	Payload(mtu uint16, nalu []byte) [][]byte
}

// Publisher is one WHIP session sending H264 (or H265) and Opus.
type Publisher struct {
	pc    *webrtc.PeerConnection
	sess  *Session
	state *connState
	mtu   uint16

	video *webrtc.TrackLocalStaticRTP
	audio *webrtc.TrackLocalStaticRTP

	vmu       sync.Mutex // guards the video packetizer state and vpkt
	payloader videoPayloader
	h265      bool
	vp9       bool
	av1       bool
	vseq      uint16
	vts0      uint32
	vpkt      rtp.Packet

	amu   sync.Mutex // guards the audio packetizer state and apkt
	aseq  uint16
	ats0  uint32
	arate int64 // the audio clock rate: 48000 for Opus, 8000 for G.711
	apkt  rtp.Packet

	layers *simulcast // nil without PublishOptions.Simulcast

	keyframeReqs  atomic.Int64
	firReqs       atomic.Int64
	nackedPkts    atomic.Int64
	twccFeedback  atomic.Int64
	recvReports   atomic.Int64
	keyframeCh    chan struct{}
	senders       [2]*webrtc.RTPSender // video, audio
	extras        apiExtras
	sentVideoPkts atomic.Uint64
	sentAudioPkts atomic.Uint64

	wg        sync.WaitGroup // RTCP readers
	closeOnce sync.Once
	closeErr  error
}

// Publish connects to the WHIP endpoint url and returns once ICE and DTLS
// are up. ctx bounds the whole exchange; it does not bound the session.
func Publish(ctx context.Context, url string, opts PublishOptions) (*Publisher, error) {
	if opts.NoVideo && opts.NoAudio {
		return nil, errors.New("publish: neither video nor audio")
	}
	if btoi(opts.H265)+btoi(opts.VP9)+btoi(opts.AV1) > 1 {
		return nil, errors.New("publish: more than one of H265, VP9 and AV1 asked")
	}
	if len(opts.Simulcast) > 0 && (opts.NoVideo || opts.H265 || opts.VP9 || opts.AV1 || opts.RTX) {
		return nil, errors.New("publish: simulcast needs H264 video, without RTX")
	}
	mtu := opts.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if mtu < 100 || mtu > 65000 {
		return nil, fmt.Errorf("publish: MTU %d out of range", mtu)
	}
	fmtp := opts.H264Fmtp
	if fmtp == "" {
		fmtp = DefaultH264Fmtp
	}

	me := &webrtc.MediaEngine{}
	fb := opts.VideoFeedback
	if fb == nil {
		fb = videoFeedback
	}
	videoCap := webrtc.RTPCodecCapability{
		MimeType:     webrtc.MimeTypeH264,
		ClockRate:    90000,
		SDPFmtpLine:  fmtp,
		RTCPFeedback: fb,
	}
	var payloader videoPayloader = &codecs.H264Payloader{}
	if opts.H265 {
		videoCap.MimeType, videoCap.SDPFmtpLine = webrtc.MimeTypeH265, "profile-id=1"
		payloader = &codecs.H265Payloader{}
	}
	if opts.VP9 {
		videoCap.MimeType, videoCap.SDPFmtpLine = webrtc.MimeTypeVP9, "profile-id=0"
		payloader = &codecs.VP9Payloader{}
	}
	if opts.AV1 {
		videoCap.MimeType, videoCap.SDPFmtpLine = webrtc.MimeTypeAV1, "level-idx=5;profile=0;tier=0"
		payloader = &codecs.AV1Payloader{}
	}
	audioCap := opusCapability
	if opts.OpusFmtp != "" {
		audioCap.SDPFmtpLine = opts.OpusFmtp
	}
	audioPT := webrtc.PayloadType(111)
	switch opts.AudioCodec {
	case "", webrtc.MimeTypeOpus:
	case webrtc.MimeTypePCMU, webrtc.MimeTypePCMA:
		audioCap = webrtc.RTPCodecCapability{MimeType: opts.AudioCodec, ClockRate: 8000, Channels: 1}
		audioPT = 0
		if opts.AudioCodec == webrtc.MimeTypePCMA {
			audioPT = 8
		}
	default:
		return nil, fmt.Errorf("publish: audio codec %q (want Opus, PCMU or PCMA)", opts.AudioCodec)
	}
	if !opts.NoVideo {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: videoCap, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
		if opts.RTX {
			rtx := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=102"}
			if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: rtx, PayloadType: 103}, webrtc.RTPCodecTypeVideo); err != nil {
				return nil, err
			}
		}
	}
	if !opts.NoAudio {
		if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: audioCap, PayloadType: audioPT}, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
	}
	extras := apiExtras{wrap: opts.WrapConn, noSenderReports: opts.NoSenderReports, simulcast: len(opts.Simulcast) > 0, twccSender: opts.TransportCC, tcp: opts.ICETCP}
	api, err := newAPI(url, opts.LocalIPs, me, &extras)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		if extras.closer != nil {
			_ = extras.closer.Close()
		}
		return nil, err
	}
	p := &Publisher{
		pc:         pc,
		state:      watchState(pc),
		mtu:        uint16(mtu),
		payloader:  payloader,
		h265:       opts.H265,
		vp9:        opts.VP9,
		av1:        opts.AV1,
		extras:     extras,
		vseq:       uint16(rand.Uint32()),
		vts0:       rand.Uint32(),
		aseq:       uint16(rand.Uint32()),
		ats0:       rand.Uint32(),
		arate:      int64(audioCap.ClockRate),
		keyframeCh: make(chan struct{}, 1),
	}
	p.vpkt.Version, p.apkt.Version = 2, 2

	addTrack := func(c webrtc.RTPCodecCapability, id string) (*webrtc.TrackLocalStaticRTP, error) {
		t, err := webrtc.NewTrackLocalStaticRTP(c, id, "sluice-client")
		if err != nil {
			return nil, err
		}
		tr, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		p.wg.Add(1)
		go p.readRTCP(tr.Sender())
		if c.MimeType == webrtc.MimeTypeOpus {
			p.senders[1] = tr.Sender()
		} else {
			p.senders[0] = tr.Sender()
		}
		return t, nil
	}
	switch {
	case len(opts.Simulcast) > 0:
		if p.layers, err = addSimulcast(p, videoCap, opts.Simulcast); err != nil {
			return nil, errors.Join(err, p.Close())
		}
	case !opts.NoVideo:
		if p.video, err = addTrack(videoCap, "video"); err != nil {
			return nil, errors.Join(err, p.Close())
		}
	}
	if !opts.NoAudio {
		if p.audio, err = addTrack(audioCap, "audio"); err != nil {
			return nil, errors.Join(err, p.Close())
		}
	}

	sig := signalOptions{url: url, token: opts.Token, httpClient: opts.HTTPClient, trickle: opts.Trickle}
	if p.layers != nil {
		sig.munge = withoutVideoSSRCs
	}
	p.sess, err = negotiate(ctx, pc, sig)
	if err == nil {
		err = p.state.waitConnected(ctx)
	}
	if err == nil && p.layers != nil {
		err = p.layers.bind()
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("publish %s: %w", url, err), p.Close())
	}
	return p, nil
}

// videoFeedback is what a browser offers for H264: NACK, PLI and FIR.
var videoFeedback = []webrtc.RTCPFeedback{
	{Type: "nack"},
	{Type: "nack", Parameter: "pli"},
	{Type: "ccm", Parameter: "fir"},
}

var opusCapability = webrtc.RTPCodecCapability{
	MimeType:    webrtc.MimeTypeOpus,
	ClockRate:   48000,
	Channels:    2,
	SDPFmtpLine: "minptime=10;useinbandfec=1",
}

// Location returns the absolute URL of the WHIP session resource.
func (p *Publisher) Location() string { return p.sess.location }

// ETag returns the session's current ETag (the one from the POST, or from
// the last ICE restart), if the server gave one.
func (p *Publisher) ETag() string { return p.sess.ETag() }

// Offer returns the SDP offer as it was POSTed.
func (p *Publisher) Offer() string { return p.sess.offer }

// TrickledCandidates returns how many candidates were sent by PATCH
// (PublishOptions.Trickle).
func (p *Publisher) TrickledCandidates() int { return int(p.sess.trickled.Load()) }

// RestartICE performs an ICE restart by PATCH (RFC 9725 §4.4.2) and returns
// once the server's answer is applied; the connection then re-checks and
// media resumes on the new ICE session while DTLS carries on. It fails with
// an *HTTPError unless the server answers 200 with an SDP fragment and a new
// ETag. Do not call it concurrently with itself.
func (p *Publisher) RestartICE(ctx context.Context) error { return restartICE(ctx, p.pc, p.sess) }

// Hangup closes the PeerConnection without DELETE, as a browser tab that
// is closed: the server learns it from the DTLS close_notify. Close must
// still be called to free the rest.
func (p *Publisher) Hangup() error { return p.pc.Close() }

// Done is closed when the connection is closed by either side, has failed
// or is disconnected, and at the latest when Close returns.
func (p *Publisher) Done() <-chan struct{} { return p.state.ended }

// WriteH264 packetizes one access unit (NAL units without start codes)
// into RTP (RFC 6184, single NAL, STAP-A for SPS+PPS, FU-A) and sends it;
// the last packet carries the marker bit. pts is the presentation time from
// the start of the stream. Access unit delimiters and filler data are
// dropped by the payloader.
func (p *Publisher) WriteH264(au [][]byte, pts time.Duration) error {
	if p.h265 || p.vp9 || p.av1 {
		return errors.New("publisher does not send H264")
	}
	return p.writeVideo(au, pts)
}

// WriteH265 packetizes one H265 access unit (NAL units without start
// codes) into RTP (RFC 7798: single NAL unit packets, parameter sets
// aggregated with the following NAL unit, fragmentation units) and sends
// it; the last packet carries the marker bit. It needs PublishOptions.H265.
// Access unit delimiters are dropped by the payloader.
func (p *Publisher) WriteH265(au [][]byte, pts time.Duration) error {
	if !p.h265 {
		return errors.New("publisher does not send H265")
	}
	return p.writeVideo(au, pts)
}

// WriteVP9 packetizes one VP9 frame into RTP (RFC 9628, pion's payloader:
// non-flexible mode, a picture ID) and sends it; the last packet carries
// the marker bit. It needs PublishOptions.VP9.
func (p *Publisher) WriteVP9(frame []byte, pts time.Duration) error {
	if !p.vp9 {
		return errors.New("publisher does not send VP9")
	}
	return p.writeVideo([][]byte{frame}, pts)
}

// WriteAV1 packetizes one AV1 temporal unit (OBUs in the low overhead
// bitstream format, with obu_size) into RTP (pion's payloader) and sends
// it; the last packet carries the marker bit. It needs PublishOptions.AV1.
func (p *Publisher) WriteAV1(tu []byte, pts time.Duration) error {
	if !p.av1 {
		return errors.New("publisher does not send AV1")
	}
	return p.writeVideo([][]byte{tu}, pts)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *Publisher) writeVideo(au [][]byte, pts time.Duration) error {
	if p.video == nil {
		return errors.New("publisher has no video track")
	}
	p.vmu.Lock()
	defer p.vmu.Unlock()
	var payloads [][]byte
	for _, nalu := range au {
		payloads = append(payloads, p.payloader.Payload(p.mtu, nalu)...)
	}
	ts := p.vts0 + uint32(int64(pts)*90000/int64(time.Second))
	for i, pl := range payloads {
		p.vpkt.Marker = i == len(payloads)-1
		p.vpkt.SequenceNumber = p.vseq
		p.vpkt.Timestamp = ts
		p.vpkt.Payload = pl
		p.vseq++
		if err := p.video.WriteRTP(&p.vpkt); err != nil {
			return err
		}
		p.sentVideoPkts.Add(1)
	}
	return nil
}

// WriteOpus sends one Opus packet (RFC 7587), or a G.711 one with
// PublishOptions.AudioCodec, with presentation time pts.
func (p *Publisher) WriteOpus(payload []byte, pts time.Duration) error {
	if p.audio == nil {
		return errors.New("publisher has no audio track")
	}
	p.amu.Lock()
	defer p.amu.Unlock()
	p.apkt.SequenceNumber = p.aseq
	p.apkt.Timestamp = p.ats0 + uint32(int64(pts)*p.arate/int64(time.Second))
	p.apkt.Payload = payload
	p.aseq++
	if err := p.audio.WriteRTP(&p.apkt); err != nil {
		return err
	}
	p.sentAudioPkts.Add(1)
	return nil
}

// SentPackets returns how many video and audio RTP packets were written.
func (p *Publisher) SentPackets() (video, audio uint64) {
	return p.sentVideoPkts.Load(), p.sentAudioPkts.Load()
}

// KeyframeRequests returns how many PLI and FIR messages the server sent.
func (p *Publisher) KeyframeRequests() int { return int(p.keyframeReqs.Load()) }

// TWCCFeedback is how many transport-wide congestion-control feedback
// packets the publisher received.
func (p *Publisher) TWCCFeedback() int { return int(p.twccFeedback.Load()) }

// ReceiverReports is how many RTCP receiver reports the publisher
// received.
func (p *Publisher) ReceiverReports() int { return int(p.recvReports.Load()) }

// FIRRequests returns how many of the keyframe requests were FIRs.
func (p *Publisher) FIRRequests() int { return int(p.firReqs.Load()) }

// NACKedPackets returns how many packets the server's generic NACKs asked
// for (pion's responder answers them from its send buffer).
func (p *Publisher) NACKedPackets() int { return int(p.nackedPkts.Load()) }

// WriteSenderReport sends an RTCP sender report (RFC 3550 §6.4.1) for the
// video or audio track saying that the media at pts (on the clock that
// WriteH264/WriteOpus use) was sampled at wall time ntp. Use it with
// PublishOptions.NoSenderReports to state a known capture timing.
func (p *Publisher) WriteSenderReport(video bool, ntp time.Time, pts time.Duration) error {
	i, base, rate := 1, p.ats0, p.arate
	if video {
		i, base, rate = 0, p.vts0, 90000
	}
	s := p.senders[i]
	if s == nil {
		return errors.New("no such track")
	}
	enc := s.GetParameters().Encodings
	if len(enc) == 0 {
		return errors.New("track not negotiated")
	}
	sec := uint64(ntp.Unix() + 2208988800) // NTP epoch 1900
	frac := uint64(ntp.Nanosecond()) << 32 / uint64(time.Second)
	return p.pc.WriteRTCP([]rtcp.Packet{&rtcp.SenderReport{
		SSRC:    uint32(enc[0].SSRC),
		NTPTime: sec<<32 | frac,
		RTPTime: base + uint32(int64(pts)*rate/int64(time.Second)),
	}})
}

// KeyframeRequested receives a value after one or more keyframe requests
// arrive; it holds at most one pending value.
func (p *Publisher) KeyframeRequested() <-chan struct{} { return p.keyframeCh }

// readRTCP drains the sender's RTCP, which the NACK responder needs, and
// counts keyframe requests. It ends when the sender stops.
func (p *Publisher) readRTCP(s *webrtc.RTPSender) {
	p.readRTCPFrom(s.Read, nil)
}

// readRTCPFrom is readRTCP for one read function; layerPLIs, if not nil,
// counts the keyframe requests of one simulcast layer.
func (p *Publisher) readRTCPFrom(read func([]byte) (int, interceptor.Attributes, error), layerPLIs *atomic.Int64) {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		var k int64
		for _, pkt := range pkts {
			switch pkt := pkt.(type) {
			case *rtcp.PictureLossIndication:
				k++
			case *rtcp.FullIntraRequest:
				k++
				p.firReqs.Add(1)
			case *rtcp.TransportLayerCC:
				p.twccFeedback.Add(1)
			case *rtcp.ReceiverReport:
				p.recvReports.Add(1)
			case *rtcp.TransportLayerNack:
				for _, pair := range pkt.Nacks {
					p.nackedPkts.Add(int64(len(pair.PacketList())))
				}
			}
		}
		if k > 0 {
			if layerPLIs != nil {
				layerPLIs.Add(k)
			}
			p.keyframeReqs.Add(k)
			select {
			case p.keyframeCh <- struct{}{}:
			default:
			}
		}
	}
}

// Close ends the WHIP session with DELETE, closes the PeerConnection and
// waits for the goroutines it started. It returns the DELETE error, if any.
func (p *Publisher) Close() error {
	p.closeOnce.Do(func() {
		var errs []error
		if p.sess != nil {
			errs = append(errs, p.sess.Delete())
		}
		errs = append(errs, p.pc.GracefulClose())
		p.state.end()
		p.wg.Wait()
		if p.extras.closer != nil {
			errs = append(errs, p.extras.closer.Close())
		}
		p.closeErr = errors.Join(errs...)
	})
	return p.closeErr
}
