// Package whip is the ingest side: one Session per WHIP publisher, from SDP
// offer to RTP in the stream's ring, with keyframe requests back to the
// publisher and cleanup when the connection ends.
package whip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/reorder"
	"github.com/sluice-media/sluice/internal/rtc"
)

// ErrNoMedia means the offer had no track in a codec sluice accepts.
var ErrNoMedia = errors.New("no acceptable media")

// MaxLayers is how many simulcast layers one media section may send.
const MaxLayers = 3

// peerFactory is what a Session needs from rtc.Engine.
type peerFactory interface {
	NewPublisherPCFor(obs rtc.RTCPObserver, codecs []webrtc.RTPCodecParameters) (*webrtc.PeerConnection, error)
}

// Deps are the long-lived parts a Session uses.
type Deps struct {
	Peers          peerFactory
	Hub            *hub.Hub
	ConnectTimeout time.Duration
	Log            *slog.Logger
	Metrics        *metrics.Metrics // nil: counted nowhere
	// Reorder bounds each track's reorder window (zero fields take the
	// reorder package's defaults: 64 packets, 100 ms).
	Reorder reorder.Config
	// PLIInterval, if not 0, asks a publisher for a keyframe when a video
	// track has sent none for this long.
	PLIInterval time.Duration
	// VideoCodecs, if not nil, are the video codecs publishers may send,
	// in sluice's order of preference (webrtc.video_codecs); nil takes
	// every codec sluice serves, in each publisher's own order.
	VideoCodecs []string
}

// Session is one publisher's PeerConnection feeding one hub stream.
type Session struct {
	id      string
	stream  *hub.Stream
	pc      *webrtc.PeerConnection
	log     *slog.Logger
	answer  string
	onClose func(reason error)
	stats   *metrics.Publisher

	offer       *sdp.SessionDescription
	reorder     reorder.Config
	pliInterval time.Duration
	rtcpSSRC    uint32 // sender SSRC of the RTCP feedback sluice sends

	mu      sync.Mutex
	closed  bool
	readers sync.WaitGroup
	video   []videoSource
	firSeq  uint8

	closeOnce sync.Once
	done      chan struct{}
}

// New negotiates a publisher session for the named stream and returns once
// the answer (with all ICE candidates) is ready. onClose runs once, with the
// reason Close got, when the session ends for any reason.
func New(ctx context.Context, d Deps, streamName, offer, remote string, onClose func(reason error)) (*Session, error) {
	parsed, err := rtc.ParseOffer(offer)
	if err != nil {
		return nil, err
	}
	s := &Session{
		id: rtc.NewID(), onClose: onClose, done: make(chan struct{}),
		offer: parsed, reorder: d.Reorder, pliInterval: d.PLIInterval, rtcpSSRC: rand.Uint32(),
	}
	s.log = d.Log.With("stream", streamName, "session", s.id, "remote", remote)

	// Each section is trimmed to the one codec the publisher will send,
	// chosen here, so that what sluice cannot serve is refused before an
	// answer is made.
	chosen, err := rtc.SelectIngest(parsed, d.VideoCodecs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoMedia, err)
	}
	trimmed, err := parsed.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", rtc.ErrBadOffer, err)
	}
	s.stats = d.Metrics.Publisher(streamName, time.Now())
	s.pc, err = d.Peers.NewPublisherPCFor(s.stats, chosen)
	if err != nil {
		s.stats.Close("")
		if errors.Is(err, rtc.ErrBadOffer) {
			return nil, err
		}
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	fail := func(err error) (*Session, error) {
		s.stats.Close("")
		_ = s.pc.Close()
		if s.stream != nil {
			s.stream.Detach(s)
		}
		return nil, err
	}
	if err := rtc.SetOffer(s.pc, string(trimmed)); err != nil {
		return fail(err)
	}
	// The first negotiated codec of each section is what the publisher
	// sends: the stream's tracks, checked against a stream this publisher
	// takes over.
	// A simulcast section sends one track per layer (RID).
	var codecs []media.Codec
	for _, tr := range s.pc.GetTransceivers() {
		if c := tr.Receiver().GetParameters().Codecs; len(c) > 0 {
			rids := rtc.SimulcastRIDs(parsed, tr.Mid())
			if len(rids) > MaxLayers {
				return fail(fmt.Errorf("%w: %d simulcast layers in section %q, at most %d", rtc.ErrBadOffer, len(rids), tr.Mid(), MaxLayers))
			}
			for range max(len(rids), 1) {
				codecs = append(codecs, rtc.CodecOf(c[0]))
			}
		}
	}
	tracks := len(codecs)
	if tracks == 0 {
		return fail(fmt.Errorf("%w: offer has %d media sections, none sending %s", ErrNoMedia, len(parsed.MediaDescriptions), rtc.AcceptedCodecs))
	}
	// Claim the stream before the slow part (ICE gathering) so that a second
	// publisher is refused at once.
	if s.stream, err = d.Hub.Publish(streamName, s, codecs); err != nil {
		return fail(err)
	}
	s.pc.OnTrack(s.onTrack)
	if s.answer, err = rtc.Answer(ctx, s.pc); err != nil {
		return fail(err)
	}
	s.stats.Negotiated(s.stream.Ingested)
	// The client cannot connect before it has the answer, so watching from
	// here on misses nothing.
	rtc.Watch(s.pc, d.ConnectTimeout, func() {
		s.stats.Connected()
		s.log.Info("publisher connected")
	}, s.Close)
	s.log.Info("publisher session created", "tracks", tracks)
	return s, nil
}

// ID is the session's random resource id.
func (s *Session) ID() string { return s.id }

// Answer is the SDP answer for the client.
func (s *Session) Answer() string { return s.answer }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// Close ends the session: the stream ends, the PeerConnection closes and
// every goroutine of the session returns before Close does. The reason is
// logged; nil means the client asked (DELETE) or the server is stopping.
func (s *Session) Close(reason error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		// The stream waits for a successor for the reconnect grace period;
		// its viewers stay connected meanwhile.
		s.stream.Detach(s)
		_ = s.pc.Close()
		s.readers.Wait()
		s.stats.Close(rtc.FailureReason(reason))
		if reason != nil && !errors.Is(reason, rtc.ErrClosed) {
			s.log.Warn("publisher session closed", "err", reason)
		} else {
			s.log.Info("publisher session closed")
		}
		close(s.done)
		if s.onClose != nil {
			s.onClose(reason)
		}
	})
}

// RequestKeyframe asks for a keyframe on every video track (hub.Publisher):
// a PLI, or a FIR where the publisher offered "ccm fir" but not "nack pli".
// The hub rate-limits the calls.
func (s *Session) RequestKeyframe() { s.requestKeyframes(-1) }

// RequestTrackKeyframe asks for a keyframe on one track, a simulcast
// layer (hub.TrackKeyframer): only its SSRC gets the PLI or FIR.
func (s *Session) RequestTrackKeyframe(track int) { s.requestKeyframes(track) }

// requestKeyframes asks the video track with hub index track for a
// keyframe, or every video track if track is -1.
func (s *Session) requestKeyframes(track int) {
	s.mu.Lock()
	pkts := make([]rtcp.Packet, 0, len(s.video))
	for _, v := range s.video {
		if track >= 0 && v.track != track {
			continue
		}
		if v.fir {
			// RFC 5104 §4.3.1: the FCI names the SSRC and a sequence
			// number that changes with each new request.
			s.firSeq++
			pkts = append(pkts, &rtcp.FullIntraRequest{SenderSSRC: s.rtcpSSRC, FIR: []rtcp.FIREntry{{SSRC: v.ssrc, SequenceNumber: s.firSeq}}})
			continue
		}
		pkts = append(pkts, &rtcp.PictureLossIndication{SenderSSRC: s.rtcpSSRC, MediaSSRC: v.ssrc})
	}
	closed := s.closed
	s.mu.Unlock()
	if len(pkts) > 0 && !closed {
		_ = s.pc.WriteRTCP(pkts)
	}
}

func (s *Session) onTrack(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	fb := s.feedback(t, rcv)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.readers.Add(2)
	s.mu.Unlock()
	defer s.readers.Done()

	c := rtc.CodecOf(t.Codec())
	var idx int
	if rid := t.RID(); rid != "" {
		idx = s.stream.AddLayer(c, midOf(s.pc, rcv), rid)
	} else {
		idx = s.stream.AddTrack(c)
	}
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		s.mu.Lock()
		s.video = append(s.video, videoSource{track: idx, ssrc: uint32(t.SSRC()), fir: fb.FIR && !fb.PLI})
		s.mu.Unlock()
	}
	s.log.Info("publisher track", "kind", t.Kind().String(), "codec", c.String(), "ssrc", uint32(t.SSRC()), "rid", t.RID(), "rtx", t.HasRTX())
	go func() {
		defer s.readers.Done()
		ReadSenderReports(s.stream, rcv, t.RID(), uint32(t.SSRC()), idx)
	}()
	cfg := ingestConfig{
		track: idx, codec: c, reorder: s.reorder, pliInterval: s.pliInterval,
		late: s.stats.Late, dup: s.stats.Duplicated,
	}
	if fb.NACK {
		ssrc := uint32(t.SSRC())
		cfg.nack = func(seqs []uint16) {
			_ = s.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
				SenderSSRC: s.rtcpSSRC, MediaSSRC: ssrc, Nacks: rtcp.NackPairsFromSequenceNumbers(seqs),
			}})
		}
	}
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		s.stream.RequestTrackKeyframe(idx)
	}
	s.read(t, newIngest(cfg, s.stream))
}

// videoSource is a video track's hub index, SSRC and how it wants keyframe
// requests.
type videoSource struct {
	track int
	ssrc  uint32
	fir   bool
}

// midOf is the mid of the receiver's transceiver.
func midOf(pc *webrtc.PeerConnection, rcv *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			return tr.Mid()
		}
	}
	return ""
}

// feedback returns the RTCP feedback the publisher's offer lists for the
// track's codec.
func (s *Session) feedback(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) rtc.Feedback {
	for _, tr := range s.pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			return rtc.FeedbackOf(s.offer, tr.Mid(), uint8(t.PayloadType()))
		}
	}
	return rtc.Feedback{}
}

// read moves RTP from one remote track through its ingest (reorder window,
// NACKs, keyframe requests) into the ring until the track ends.
func (s *Session) read(t *webrtc.TrackRemote, in *ingest) {
	ReadTrack(t, in.cfg.track, in.wake, in.tick, in.push)
}

// ReadTrack reads a remote track's RTP into hub packets for ring track
// idx until the track ends; publishers' sessions and the cluster's edge
// pulls both use it. Each packet gets its own payload buffer: the ring
// shares it with every viewer, so it can never be reused. push gets every
// packet in arrival order, with a nil packet for padding only (a bandwidth
// probe: it takes a sequence number but carries nothing to forward).
//
// wake says when the caller needs control even if no packet comes (a
// reorder window's next deadline; false for no deadline), and tick runs
// then. pion hands out RTX repairs only from inside Read, before it waits
// for a media packet: a repair that arrives while Read waits stays queued
// until the next media packet or the deadline. So when the deadline
// passes, one more Read with a deadline already past collects queued
// repairs before tick gives anything up.
func ReadTrack(t *webrtc.TrackRemote, idx int, wake func() (time.Time, bool), tick func(now time.Time), push func(seq uint16, p *hub.Packet, now time.Time)) {
	buf := make([]byte, 1500)
	var h rtp.Header
	var slab packetSlab
	var armed time.Time // the read deadline set; zero for none
	polled := false
	for {
		dl, _ := wake()
		if polled {
			dl = pastDeadline
		}
		if !dl.Equal(armed) {
			_ = t.SetReadDeadline(dl)
			armed = dl
		}
		n, _, err := t.Read(buf)
		now := time.Now()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if polled = !polled; !polled {
					tick(now)
				}
				continue
			}
			return
		}
		polled = false
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		end := n
		if h.Padding && n > hl {
			end -= int(buf[n-1])
		}
		if end <= hl {
			push(h.SequenceNumber, nil, now)
			continue
		}
		p := slab.packet(buf[hl:end])
		p.Track = idx
		p.Marker = h.Marker
		p.PayloadType = h.PayloadType
		p.SequenceNumber = h.SequenceNumber
		p.Timestamp = h.Timestamp
		push(h.SequenceNumber, p, now)
	}
}

// packetSlab hands out packets and payload copies carved from larger
// blocks: one allocation per slabPackets packets and per slabBytes of
// payload, not two per packet. A block lives as long as any packet in it
// (in the ring, the GOP cache, a recorder's queue), which the ring's
// first-in first-out order keeps to about one block more than the packets
// held. Packets and payloads are never reused.
type packetSlab struct {
	pkts []hub.Packet
	data []byte
}

const (
	slabPackets = 64
	slabBytes   = 64 << 10
)

// packet returns a new packet holding a copy of payload.
func (s *packetSlab) packet(payload []byte) *hub.Packet {
	if len(s.pkts) == 0 {
		s.pkts = make([]hub.Packet, slabPackets)
	}
	p := &s.pkts[0]
	s.pkts = s.pkts[1:]
	n := len(payload)
	if len(s.data) < n {
		s.data = make([]byte, max(slabBytes, n))
	}
	p.Payload = s.data[:n:n] // full: an append copies instead of writing into the next payload
	s.data = s.data[n:]
	copy(p.Payload, payload)
	return p
}

// pastDeadline makes a Read return at once unless something is queued.
var pastDeadline = time.Unix(1, 0)

// ReadSenderReports keeps a received track's newest RTCP sender report in
// the stream, which maps its RTP clock to the sender's wall clock (RFC 3550
// §6.4.1) for A/V sync downstream. It also drains the receiver's RTCP,
// which pion's interceptors need. rid names a simulcast layer, "" for
// none. It ends when the track does. Publishers' sessions and the
// cluster's edge pulls both use it.
func ReadSenderReports(st *hub.Stream, rcv *webrtc.RTPReceiver, rid string, ssrc uint32, idx int) {
	buf := make([]byte, 1500)
	read := rcv.Read
	if rid != "" {
		read = func(b []byte) (int, interceptor.Attributes, error) { return rcv.ReadSimulcast(b, rid) }
	}
	for {
		n, _, err := read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == ssrc {
				st.SetSenderReport(idx, sr.NTPTime, sr.RTPTime)
			}
		}
	}
}

// PeerConnection is the session's pion PeerConnection, for trickle ICE and
// ICE restarts.
func (s *Session) PeerConnection() *webrtc.PeerConnection { return s.pc }
