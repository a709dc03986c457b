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
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/rtc"
)

// ErrNoMedia means the offer had no track in a codec sluice accepts.
var ErrNoMedia = errors.New("no acceptable media")

// MaxLayers is how many simulcast layers one media section may send.
const MaxLayers = 3

// peerFactory is what a Session needs from rtc.Engine.
type peerFactory interface {
	NewDirectPublisherPC(obs rtc.RTCPObserver, codecs []webrtc.RTPCodecParameters, offer *sdp.SessionDescription) (*webrtc.PeerConnection, *rtc.Direct, error)
}

// Deps are the long-lived parts a Session uses.
type Deps struct {
	Peers          peerFactory
	Hub            *hub.Hub
	ConnectTimeout time.Duration
	Log            *slog.Logger
	Metrics        *metrics.Metrics // nil: counted nowhere
	// Ingest is how every track is taken in (reorder window, keyframe
	// timer).
	Ingest ingest.Options
	// VideoCodecs, if not nil, are the video codecs publishers may send,
	// in sluice's order of preference (webrtc.video_codecs); nil takes
	// every codec sluice serves, in each publisher's own order.
	VideoCodecs []string
	// Detach moves connected publishers below pion (detach.go).
	Detach bool
}

// Session is one publisher's PeerConnection feeding one hub stream.
type Session struct {
	id      string
	stream  *hub.Writer
	log     *slog.Logger
	answer  string
	onClose func(reason error)
	stats   *metrics.Publisher

	offer    *sdp.SessionDescription
	ingest   ingest.Options
	rtcpSSRC uint32 // sender SSRC of the RTCP feedback sluice sends

	// tracks answer the hub's keyframe requests: PLI or FIR to each
	// track's own SSRC.
	tracks ingest.Set

	mu      sync.Mutex
	closed  bool
	readers sync.WaitGroup
	pc      *webrtc.PeerConnection // nil once detached (s.mu)

	det      detachState
	detached atomic.Bool
	pionRTCP atomic.Uint32  // RTCP packets written through pion (detach.go)
	bg       sync.WaitGroup // the detached session's feedback loop
	stop     chan struct{}  // closed by Close: bg returns

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
		id: rtc.NewID(), onClose: onClose, done: make(chan struct{}), stop: make(chan struct{}),
		offer: parsed, ingest: d.Ingest, rtcpSSRC: rand.Uint32(),
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
	s.pc, s.det.direct, err = d.Peers.NewDirectPublisherPC(s.stats, chosen, parsed)
	if !d.Detach {
		s.det.direct = nil
	}
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
			s.stream.Detach()
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
	s.det.want = tracks
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
	s.stats.Negotiated(s.stream.Stream().Ingested)
	if s.det.direct != nil {
		if a, err := rtc.ParseOffer(s.answer); err == nil {
			s.det.twccID = extmapID(a, sdp.TransportCCURI)
		}
	}
	// The client cannot connect before it has the answer, so watching from
	// here on misses nothing.
	rtc.Watch(s.pc, d.ConnectTimeout, func() {
		s.stats.Connected()
		s.log.Info("publisher connected")
		s.onConnected()
	}, s.pcDown)
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
		pc := s.pc
		if s.det.timer != nil {
			s.det.timer.Stop()
		}
		s.mu.Unlock()
		close(s.stop)
		// The stream waits for a successor for the reconnect grace period;
		// its viewers stay connected meanwhile.
		s.stream.Detach()
		if s.detached.Load() {
			s.det.direct.Release(true)
		}
		if pc != nil {
			_ = pc.Close()
		}
		s.readers.Wait()
		s.bg.Wait()
		s.det.fbMu.Lock()
		for _, t := range s.det.tracks {
			t.in.Close()
		}
		s.det.fbMu.Unlock()
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
		idx = s.stream.AddLayer(c, midOf(s.PeerConnection(), rcv), rid)
	} else {
		idx = s.stream.AddTrack(c)
	}
	s.log.Info("publisher track", "kind", t.Kind().String(), "codec", c.String(), "ssrc", uint32(t.SSRC()), "rid", t.RID(), "rtx", t.HasRTX())
	in := ingest.NewTrack(s.ingest, ingest.TrackConfig{
		Index: idx, Codec: c, SSRC: uint32(t.SSRC()), NACK: fb.NACK, FIR: fb.FIR && !fb.PLI,
		RTCP: s.writeRTCP, SenderSSRC: s.rtcpSSRC,
		Late: s.stats.Late, Duplicate: s.stats.Duplicated, Unrecovered: s.stats.Unrecovered,
	}, s.stream)
	s.tracks.Add(in)
	pt := &pionTrack{TrackRemote: t, s: s}
	s.mu.Lock()
	s.trackStarted(t, pt, in)
	s.mu.Unlock()
	read := rcv.Read
	if rid := t.RID(); rid != "" {
		read = func(b []byte) (int, interceptor.Attributes, error) { return rcv.ReadSimulcast(b, rid) }
	}
	go func() {
		defer s.readers.Done()
		in.ReadRTCP(read)
	}()
	if in.Video() {
		s.stream.RequestTrackKeyframe(idx)
	}
	in.ReadFrom(pt)
}

// RequestKeyframe asks for a keyframe on every video track (hub.Publisher).
// The hub rate-limits the calls.
func (s *Session) RequestKeyframe() { s.tracks.RequestKeyframe() }

// RequestTrackKeyframe asks for a keyframe on one track, a simulcast
// layer (hub.TrackKeyframer): only its SSRC gets the PLI or FIR.
func (s *Session) RequestTrackKeyframe(track int) { s.tracks.RequestTrackKeyframe(track) }

// writeRTCP sends feedback to the publisher unless the session is closed.
func (s *Session) writeRTCP(pkts []rtcp.Packet) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return rtc.ErrClosed
	}
	if s.detached.Load() {
		if s.stats != nil {
			s.stats.SentRTCP(pkts) // what pion's observing interceptor did
		}
		return s.det.direct.WriteRTCP(pkts)
	}
	pc := s.PeerConnection()
	if pc == nil {
		return rtc.ErrClosed
	}
	s.pionRTCP.Add(1)
	return pc.WriteRTCP(pkts)
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
	pc := s.PeerConnection()
	if pc == nil {
		return rtc.Feedback{}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			return rtc.FeedbackOf(s.offer, tr.Mid(), uint8(t.PayloadType()))
		}
	}
	return rtc.Feedback{}
}

// PeerConnection is the session's pion PeerConnection, for trickle ICE and
// ICE restarts; nil once detached.
func (s *Session) PeerConnection() *webrtc.PeerConnection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pc
}
