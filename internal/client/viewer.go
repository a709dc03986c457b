package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/reorder"
)

// DefaultQueueSize is the capacity of a Viewer's access unit and Opus
// channels when ViewOptions.QueueSize is 0.
const DefaultQueueSize = 1024

// ViewOptions configures View.
type ViewOptions struct {
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
	// VideoCodecs are the video codecs offered, in order of preference,
	// with Opus as the only audio codec. Nil offers pion's default set
	// (H264 in several profiles, VP8, VP9, AV1, H265) and audio codecs,
	// like a browser. A zero PayloadType is assigned from 96 up.
	VideoCodecs []webrtc.RTPCodecParameters
	// AudioCodecs, with VideoCodecs, are the audio codecs offered instead
	// of Opus alone (PCMU or PCMA only, as a SIP gateway offers), with
	// their payload types.
	AudioCodecs []webrtc.RTPCodecParameters
	// NoVideo and NoAudio leave out the video or the audio transceiver.
	NoVideo, NoAudio bool
	// QueueSize is the capacity of AccessUnits and OpusPackets;
	// DefaultQueueSize if 0. When a queue is full, new items are dropped
	// and counted, and the read loop goes on.
	QueueSize int
	// CountOnly counts packets without depacketizing or queueing anything:
	// for load tests with many viewers.
	CountOnly bool
	// OnRTP, when set, is called from the track's read loop with every RTP
	// packet received on the video or the audio track, after it is counted
	// and before it is depacketized. It must return quickly and must not
	// keep p, which is reused for the next packet (the bench tool reads
	// timestamps embedded in the payload this way).
	OnRTP func(kind webrtc.RTPCodecType, p *rtp.Packet)
	// OnRTCP, when set, is called with every RTCP packet the server sends
	// about the video or the audio track (sender reports, ...), from a
	// goroutine per track.
	OnRTCP func(kind webrtc.RTPCodecType, pkts []rtcp.Packet)
	// ICETCP gathers ICE-TCP candidates only (active ones, RFC 6544), for
	// servers with ICE-TCP on; UDP is not tried.
	ICETCP bool
	// MungeOffer, if set, rewrites the SDP offer just before it is sent
	// (tests of how the server handles offers pion would not make).
	MungeOffer func(sdp string) string
	// LocalIPs restricts the ICE host candidates. Empty means all
	// interfaces, or loopback only when the URL's host is a loopback one.
	LocalIPs []string
	// WrapConn, if set, wraps the one UDP socket the viewer uses, for
	// tests that impair the network. It needs LocalIPs or a loopback URL.
	WrapConn WrapConn
	// CongestionFeedback sends transport-wide congestion control feedback
	// (TWCC) for every packet, as browsers do, where the server asks for
	// it: the server estimates the viewer's bandwidth from it.
	CongestionFeedback bool
	// Reorder, if not 0, puts video packets back in sequence order for up
	// to this long before depacketizing, so that retransmissions (NACK
	// answers) repair losses instead of counting as gaps.
	Reorder time.Duration
}

// H264Codec returns H264 codec parameters with the given profile-level-id
// (six hex digits, RFC 6184 §8.1) and packetization-mode, for
// ViewOptions.VideoCodecs.
func H264Codec(profileLevelID string, packetizationMode int) webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType:  webrtc.MimeTypeH264,
		ClockRate: 90000,
		SDPFmtpLine: fmt.Sprintf("level-asymmetry-allowed=1;packetization-mode=%d;profile-level-id=%s",
			packetizationMode, profileLevelID),
		RTCPFeedback: videoFeedback,
	}}
}

// H265Codec returns H265 codec parameters (profile-id 1, Main) for
// ViewOptions.VideoCodecs.
func H265Codec() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType:     webrtc.MimeTypeH265,
		ClockRate:    90000,
		SDPFmtpLine:  "profile-id=1",
		RTCPFeedback: videoFeedback,
	}}
}

// VP8Codec returns VP8 codec parameters for ViewOptions.VideoCodecs.
func VP8Codec() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType:     webrtc.MimeTypeVP8,
		ClockRate:    90000,
		RTCPFeedback: videoFeedback,
	}}
}

// AccessUnit is one H264 access unit received by a Viewer.
type AccessUnit struct {
	NALUs        [][]byte // without start codes
	RTPTimestamp uint32
}

// OpusPacket is one Opus packet received by a Viewer.
type OpusPacket struct {
	Payload        []byte
	RTPTimestamp   uint32
	SequenceNumber uint16
}

// Viewer is one WHEP session receiving a stream.
type Viewer struct {
	extras apiExtras
	pc     *webrtc.PeerConnection
	sess   *Session
	state  *connState
	opts   ViewOptions

	aus  chan AccessUnit
	opus chan OpusPacket

	videoPkts   atomic.Uint64
	audioPkts   atomic.Uint64
	videoBytes  atomic.Uint64
	droppedAUs  atomic.Uint64
	droppedOpus atomic.Uint64
	videoGaps   atomic.Uint64

	mu         sync.Mutex
	closed     bool
	videoTrack *webrtc.TrackRemote
	audioTrack *webrtc.TrackRemote
	firstPkt   uint8 // NAL type of the first video payload; 0 until one arrives
	firstNALU  uint8 // NAL type of the first NAL unit inside it

	wg        sync.WaitGroup // track readers
	closeOnce sync.Once
	closeErr  error
}

// View connects to the WHEP endpoint url and returns once ICE and DTLS are
// up. ctx bounds the whole exchange; it does not bound the session. A
// response other than 201 gives an *HTTPError.
func View(ctx context.Context, url string, opts ViewOptions) (*Viewer, error) {
	if opts.NoVideo && opts.NoAudio {
		return nil, errors.New("view: neither video nor audio")
	}
	if opts.QueueSize == 0 {
		opts.QueueSize = DefaultQueueSize
	}
	me, err := viewerMediaEngine(opts)
	if err != nil {
		return nil, err
	}
	extras := apiExtras{wrap: opts.WrapConn, twcc: opts.CongestionFeedback, tcp: opts.ICETCP}
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
	v := &Viewer{
		extras: extras,
		pc:     pc,
		state:  watchState(pc),
		opts:   opts,
		aus:    make(chan AccessUnit, opts.QueueSize),
		opus:   make(chan OpusPacket, opts.QueueSize),
	}
	pc.OnTrack(v.onTrack)
	recvonly := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if !opts.NoVideo {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recvonly); err != nil {
			return nil, errors.Join(err, v.Close())
		}
	}
	if !opts.NoAudio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recvonly); err != nil {
			return nil, errors.Join(err, v.Close())
		}
	}
	v.sess, err = negotiate(ctx, pc, signalOptions{url: url, token: opts.Token, httpClient: opts.HTTPClient, trickle: opts.Trickle, munge: opts.MungeOffer})
	if err == nil {
		err = v.state.waitConnected(ctx)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("view %s: %w", url, err), v.Close())
	}
	return v, nil
}

func viewerMediaEngine(opts ViewOptions) (*webrtc.MediaEngine, error) {
	me := &webrtc.MediaEngine{}
	if opts.VideoCodecs == nil {
		return me, me.RegisterDefaultCodecs()
	}
	audio := opts.AudioCodecs
	if audio == nil {
		audio = []webrtc.RTPCodecParameters{{RTPCodecCapability: opusCapability, PayloadType: 111}}
	}
	used := map[webrtc.PayloadType]bool{}
	for _, c := range audio {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			return nil, err
		}
		used[c.PayloadType] = true
	}
	for _, c := range opts.VideoCodecs {
		if c.PayloadType != 0 {
			used[c.PayloadType] = true
		}
	}
	next := webrtc.PayloadType(96)
	for _, c := range opts.VideoCodecs {
		if c.PayloadType == 0 {
			for used[next] {
				next++
			}
			c.PayloadType = next
			used[next] = true
		}
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	return me, nil
}

// onTrack runs in its own goroutine (pion starts one per track) and reads
// the track until the PeerConnection closes.
func (v *Viewer) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.wg.Add(1)
	defer v.wg.Done()
	if on := v.opts.OnRTCP; on != nil {
		kind := t.Kind()
		v.wg.Go(func() {
			for {
				pkts, _, err := r.ReadRTCP()
				if err != nil {
					return
				}
				on(kind, pkts)
			}
		})
	}
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		v.videoTrack = t
	} else {
		v.audioTrack = t
	}
	v.mu.Unlock()

	if t.Kind() == webrtc.RTPCodecTypeVideo {
		v.readVideo(t)
	} else {
		v.readAudio(t)
	}
}

func (v *Viewer) readVideo(t *webrtc.TrackRemote) {
	mime := t.Codec().MimeType
	h265 := strings.EqualFold(mime, webrtc.MimeTypeH265)
	depack := !v.opts.CountOnly && (h265 || strings.EqualFold(mime, webrtc.MimeTypeH264))
	asm := h264Assembler{h265: h265}
	first := true
	handle := func(pkt *rtp.Packet) {
		if first {
			first = false
			if strings.EqualFold(t.Codec().MimeType, webrtc.MimeTypeH264) {
				pt, nt := nalTypes(pkt.Payload)
				v.mu.Lock()
				v.firstPkt, v.firstNALU = pt, nt
				v.mu.Unlock()
			}
		}
		if !depack {
			return
		}
		nalus, ok := asm.push(pkt)
		v.videoGaps.Store(asm.gaps)
		if !ok {
			return
		}
		select {
		case v.aus <- AccessUnit{NALUs: nalus, RTPTimestamp: pkt.Timestamp}:
		default:
			v.droppedAUs.Add(1)
		}
	}
	// With ViewOptions.Reorder, packets go through a reorder window first,
	// so that retransmissions fill the gaps they were sent for. The read
	// then has a deadline while the window holds packets.
	var win *reorder.Window[*rtp.Packet]
	if v.opts.Reorder > 0 {
		win = reorder.New(reorder.Config{Packets: reorder.MaxPackets, MaxDelay: v.opts.Reorder},
			func(p *rtp.Packet, _ int) { handle(p) })
	}
	var pkt rtp.Packet
	buf := make([]byte, 1500)
	polled := false
	for {
		if win != nil {
			// pion hands out queued RTX repairs only from inside Read:
			// when the deadline passes, one more Read with a deadline
			// in the past collects them before the window gives up.
			dl, _ := win.Deadline()
			if polled {
				dl = time.Unix(1, 0)
			}
			_ = t.SetReadDeadline(dl)
		}
		n, _, err := t.Read(buf)
		if err != nil {
			var ne net.Error
			if win != nil && errors.As(err, &ne) && ne.Timeout() {
				if polled = !polled; !polled {
					win.Expire(time.Now())
				}
				continue
			}
			return
		}
		polled = false
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		v.videoPkts.Add(1)
		v.videoBytes.Add(uint64(len(pkt.Payload)))
		if v.opts.OnRTP != nil {
			v.opts.OnRTP(webrtc.RTPCodecTypeVideo, &pkt)
		}
		if win == nil {
			handle(&pkt)
			continue
		}
		p := pkt.Clone()
		now := time.Now()
		win.Push(p.SequenceNumber, p, now)
		win.Expire(now)
	}
}

func (v *Viewer) readAudio(t *webrtc.TrackRemote) {
	var pkt rtp.Packet
	buf := make([]byte, 1500)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		v.audioPkts.Add(1)
		if v.opts.OnRTP != nil {
			v.opts.OnRTP(webrtc.RTPCodecTypeAudio, &pkt)
		}
		if v.opts.CountOnly {
			continue
		}
		op := OpusPacket{
			Payload:        append([]byte(nil), pkt.Payload...),
			RTPTimestamp:   pkt.Timestamp,
			SequenceNumber: pkt.SequenceNumber,
		}
		select {
		case v.opus <- op:
		default:
			v.droppedOpus.Add(1)
		}
	}
}

// AccessUnits delivers the H264 access units received, in order. Access
// units damaged by packet loss are left out (see VideoGaps).
func (v *Viewer) AccessUnits() <-chan AccessUnit { return v.aus }

// OpusPackets delivers the Opus packets received, in order of arrival.
func (v *Viewer) OpusPackets() <-chan OpusPacket { return v.opus }

// Location returns the absolute URL of the WHEP session resource.
func (v *Viewer) Location() string { return v.sess.location }

// ETag returns the session's current ETag (the one from the POST, or from
// the last ICE restart), if the server gave one.
func (v *Viewer) ETag() string { return v.sess.ETag() }

// Offer returns the SDP offer as it was POSTed.
func (v *Viewer) Offer() string { return v.sess.offer }

// TrickledCandidates returns how many candidates were sent by PATCH
// (ViewOptions.Trickle).
func (v *Viewer) TrickledCandidates() int { return int(v.sess.trickled.Load()) }

// RestartICE performs an ICE restart by PATCH (RFC 9725 §4.4.2), as
// Publisher.RestartICE does.
func (v *Viewer) RestartICE(ctx context.Context) error { return restartICE(ctx, v.pc, v.sess) }

// Done is closed when the connection is closed by either side, has failed
// or is disconnected, and at the latest when Close returns.
func (v *Viewer) Done() <-chan struct{} { return v.state.ended }

// ViewerStats counts what a Viewer received.
type ViewerStats struct {
	VideoPackets uint64
	VideoBytes   uint64 // RTP payload bytes
	AudioPackets uint64
	VideoGaps    uint64 // sequence number discontinuities on the video track
	DroppedAUs   uint64 // access units not queued because AccessUnits was full
	DroppedOpus  uint64 // packets not queued because OpusPackets was full
}

// Stats returns the counters so far.
func (v *Viewer) Stats() ViewerStats {
	return ViewerStats{
		VideoPackets: v.videoPkts.Load(),
		VideoBytes:   v.videoBytes.Load(),
		AudioPackets: v.audioPkts.Load(),
		VideoGaps:    v.videoGaps.Load(),
		DroppedAUs:   v.droppedAUs.Load(),
		DroppedOpus:  v.droppedOpus.Load(),
	}
}

// FirstVideoNAL returns the NAL type of the first video RTP payload (24 for
// STAP-A, 28 for FU-A) and the type of the first NAL unit it carries (the
// same for a single NAL unit packet). ok is false until an H264 packet
// arrived.
func (v *Viewer) FirstVideoNAL() (packetType, naluType uint8, ok bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.firstPkt, v.firstNALU, v.firstPkt != 0
}

// VideoCodec returns the negotiated video codec, once the track arrived.
func (v *Viewer) VideoCodec() (webrtc.RTPCodecParameters, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.videoTrack == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return v.videoTrack.Codec(), true
}

// AudioCodec returns the negotiated audio codec, once the track arrived.
func (v *Viewer) AudioCodec() (webrtc.RTPCodecParameters, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.audioTrack == nil {
		return webrtc.RTPCodecParameters{}, false
	}
	return v.audioTrack.Codec(), true
}

// SendPLI asks the sender for a keyframe (RFC 4585 §6.3.1).
func (v *Viewer) SendPLI() error {
	v.mu.Lock()
	t := v.videoTrack
	v.mu.Unlock()
	if t == nil {
		return errors.New("no video track yet")
	}
	return v.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
}

// ICEConnectionState is the PeerConnection's ICE state: after an ICE
// restart, connected again once a check on the new credentials succeeded.
func (v *Viewer) ICEConnectionState() webrtc.ICEConnectionState { return v.pc.ICEConnectionState() }

// Hangup closes the PeerConnection without DELETE, as a browser tab that
// is closed does: the server learns it from DTLS (close_notify) alone.
// Close still releases the rest.
func (v *Viewer) Hangup() error { return v.pc.Close() }

// Close ends the WHEP session with DELETE, closes the PeerConnection and
// waits for the goroutines reading the tracks. A 404 on DELETE after the
// server already ended the connection is not an error.
func (v *Viewer) Close() error {
	v.closeOnce.Do(func() {
		var endedBefore bool
		select {
		case <-v.state.ended:
			endedBefore = true
		default:
		}
		var errs []error
		if v.sess != nil {
			if err := v.sess.Delete(); err != nil && (!endedBefore || StatusOf(err) != http.StatusNotFound) {
				errs = append(errs, err)
			}
		}
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		errs = append(errs, v.pc.GracefulClose())
		v.state.end()
		v.wg.Wait()
		if v.extras.closer != nil {
			errs = append(errs, v.extras.closer.Close())
		}
		v.closeErr = errors.Join(errs...)
	})
	return v.closeErr
}
