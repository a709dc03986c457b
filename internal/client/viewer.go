package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// DefaultQueueSize is the capacity of a Viewer's access unit and Opus
// channels when ViewOptions.QueueSize is 0.
const DefaultQueueSize = 1024

// ViewOptions configures View.
type ViewOptions struct {
	// HTTPClient sends the offer and the DELETE; nil means a client
	// without keep-alives, so that no idle connection outlives Close.
	HTTPClient *http.Client
	// Token, when set, is sent as "Authorization: Bearer <Token>".
	Token string
	// VideoCodecs are the video codecs offered, in order of preference,
	// with Opus as the only audio codec. Nil offers pion's default set
	// (H264 in several profiles, VP8, VP9, AV1, H265) and audio codecs,
	// like a browser. A zero PayloadType is assigned from 96 up.
	VideoCodecs []webrtc.RTPCodecParameters
	// NoVideo and NoAudio leave out the video or the audio transceiver.
	NoVideo, NoAudio bool
	// QueueSize is the capacity of AccessUnits and OpusPackets;
	// DefaultQueueSize if 0. When a queue is full, new items are dropped
	// and counted, and the read loop goes on.
	QueueSize int
	// CountOnly counts packets without depacketizing or queueing anything:
	// for load tests with many viewers.
	CountOnly bool
	// LocalIPs restricts the ICE host candidates. Empty means all
	// interfaces, or loopback only when the URL's host is a loopback one.
	LocalIPs []string
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
	pc    *webrtc.PeerConnection
	sess  *session
	state *connState
	opts  ViewOptions

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
	api, err := newAPI(url, opts.LocalIPs, me)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v := &Viewer{
		pc:    pc,
		state: watchState(pc),
		opts:  opts,
		aus:   make(chan AccessUnit, opts.QueueSize),
		opus:  make(chan OpusPacket, opts.QueueSize),
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
	v.sess, err = negotiate(ctx, pc, signalOptions{url: url, token: opts.Token, httpClient: opts.HTTPClient})
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
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: opusCapability, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	used := map[webrtc.PayloadType]bool{111: true}
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
func (v *Viewer) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.wg.Add(1)
	defer v.wg.Done()
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		v.videoTrack = t
	}
	v.mu.Unlock()

	if t.Kind() == webrtc.RTPCodecTypeVideo {
		v.readVideo(t)
	} else {
		v.readAudio(t)
	}
}

func (v *Viewer) readVideo(t *webrtc.TrackRemote) {
	depack := !v.opts.CountOnly && strings.EqualFold(t.Codec().MimeType, webrtc.MimeTypeH264)
	var asm h264Assembler
	var pkt rtp.Packet
	buf := make([]byte, 1500)
	first := true
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		v.videoPkts.Add(1)
		v.videoBytes.Add(uint64(len(pkt.Payload)))
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
			continue
		}
		nalus, ok := asm.push(&pkt)
		v.videoGaps.Store(asm.gaps)
		if !ok {
			continue
		}
		select {
		case v.aus <- AccessUnit{NALUs: nalus, RTPTimestamp: pkt.Timestamp}:
		default:
			v.droppedAUs.Add(1)
		}
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
			if err := v.sess.delete(); err != nil && (!endedBefore || StatusOf(err) != http.StatusNotFound) {
				errs = append(errs, err)
			}
		}
		v.mu.Lock()
		v.closed = true
		v.mu.Unlock()
		errs = append(errs, v.pc.GracefulClose())
		v.state.end()
		v.wg.Wait()
		v.closeErr = errors.Join(errs...)
	})
	return v.closeErr
}
