// Package whip is the ingest side: one Session per WHIP publisher, from SDP
// offer to RTP in the stream's ring, with keyframe requests back to the
// publisher and cleanup when the connection ends.
package whip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/rtc"
)

// ErrNoMedia means the offer had no track in a codec sluice accepts.
var ErrNoMedia = errors.New("no acceptable media")

// peerFactory is what a Session needs from rtc.Engine.
type peerFactory interface {
	NewPublisherPC() (*webrtc.PeerConnection, error)
}

// Deps are the long-lived parts a Session uses.
type Deps struct {
	Peers          peerFactory
	Hub            *hub.Hub
	ConnectTimeout time.Duration
	Log            *slog.Logger
}

// Session is one publisher's PeerConnection feeding one hub stream.
type Session struct {
	id      string
	stream  *hub.Stream
	pc      *webrtc.PeerConnection
	log     *slog.Logger
	answer  string
	onClose func(reason error)

	mu        sync.Mutex
	closed    bool
	readers   sync.WaitGroup
	videoSSRC []uint32

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
	s := &Session{id: rtc.NewID(), onClose: onClose, done: make(chan struct{})}
	s.log = d.Log.With("stream", streamName, "session", s.id, "remote", remote)

	s.pc, err = d.Peers.NewPublisherPC()
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	fail := func(err error) (*Session, error) {
		_ = s.pc.Close()
		if s.stream != nil {
			s.stream.End()
		}
		return nil, err
	}
	if err := rtc.SetOffer(s.pc, offer); err != nil {
		return fail(err)
	}
	tracks := 0
	for _, tr := range s.pc.GetTransceivers() {
		if len(tr.Receiver().GetParameters().Codecs) == 0 {
			continue
		}
		tracks++
	}
	if tracks == 0 {
		return fail(fmt.Errorf("%w: offer has %d media sections, none in %s", ErrNoMedia, len(parsed.MediaDescriptions), rtc.AcceptedCodecs))
	}
	// Claim the stream before the slow part (ICE gathering) so that a second
	// publisher is refused at once.
	if s.stream, err = d.Hub.Publish(streamName, s, tracks); err != nil {
		return fail(err)
	}
	s.pc.OnTrack(s.onTrack)
	if s.answer, err = rtc.Answer(ctx, s.pc); err != nil {
		return fail(err)
	}
	// The client cannot connect before it has the answer, so watching from
	// here on misses nothing.
	rtc.Watch(s.pc, d.ConnectTimeout, func() {
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
		s.stream.End()
		_ = s.pc.Close()
		s.readers.Wait()
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

// RequestKeyframe sends a PLI for every video track (hub.Publisher). The hub
// rate-limits the calls.
func (s *Session) RequestKeyframe() {
	s.mu.Lock()
	pkts := make([]rtcp.Packet, 0, len(s.videoSSRC))
	for _, ssrc := range s.videoSSRC {
		pkts = append(pkts, &rtcp.PictureLossIndication{MediaSSRC: ssrc})
	}
	closed := s.closed
	s.mu.Unlock()
	if len(pkts) > 0 && !closed {
		_ = s.pc.WriteRTCP(pkts)
	}
}

func (s *Session) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.readers.Add(1)
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		s.videoSSRC = append(s.videoSSRC, uint32(t.SSRC()))
	}
	s.mu.Unlock()
	defer s.readers.Done()

	c := rtc.CodecOf(t.Codec())
	idx := s.stream.AddTrack(c)
	s.log.Info("publisher track", "kind", t.Kind().String(), "codec", c.String(), "ssrc", uint32(t.SSRC()))
	if t.Kind() == webrtc.RTPCodecTypeVideo {
		s.stream.RequestKeyframe()
	}
	s.read(t, idx)
}

// read moves RTP from one remote track into the ring until the track ends.
// Each packet gets its own payload buffer: the ring shares it with every
// viewer, so it can never be reused.
func (s *Session) read(t *webrtc.TrackRemote, idx int) {
	buf := make([]byte, 1500)
	var h rtp.Header
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		hl, err := h.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		end := n
		if h.Padding && n > hl {
			end -= int(buf[n-1])
		}
		if end <= hl {
			continue // padding-only probe: nothing to forward
		}
		payload := make([]byte, end-hl)
		copy(payload, buf[hl:end])
		s.stream.Write(&hub.Packet{
			Track:          idx,
			Marker:         h.Marker,
			PayloadType:    h.PayloadType,
			SequenceNumber: h.SequenceNumber,
			Timestamp:      h.Timestamp,
			Payload:        payload,
		})
	}
}

// PeerConnection is the session's pion PeerConnection, for trickle ICE and
// ICE restarts.
func (s *Session) PeerConnection() *webrtc.PeerConnection { return s.pc }
