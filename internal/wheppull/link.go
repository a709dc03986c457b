// Package wheppull plays a stream from a WHEP server into the hub: one
// WHEP session (RFC 9725) from sluice, a receive-only PeerConnection
// whose tracks go through internal/ingest like a WHIP publisher's, and
// which answers the hub's keyframe requests as the stream's publisher.
// The cluster's edge pulls (to a stream's owner node) and the whep://
// sources (any WHEP server) share it.
package wheppull

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/rtc"
)

// ErrClosed is the reason of a link closed by this side.
var ErrClosed = errors.New("closed by this node")

// Peers makes the PeerConnection: rtc.Engine's, which receives the
// ingest codecs on the shared UDP port.
type Peers interface {
	NewPublisherPC(obs rtc.RTCPObserver) (*webrtc.PeerConnection, error)
}

// Config is how one link is dialled.
type Config struct {
	Peers Peers
	HTTP  *http.Client
	// Endpoint is the WHEP endpoint's http:// or https:// URL.
	Endpoint string
	// Auth signs each signalling request (POST, DELETE); nil: none.
	Auth client.Auth
	// ConnectTimeout bounds ICE and DTLS after the answer.
	ConnectTimeout time.Duration
	// Ingest bounds each track's reorder window and keyframe requests.
	Ingest ingest.Options
	// Late, Duplicate and Unrecovered count what the link lost; nil:
	// not counted beyond the tracks' own stats.
	Late, Duplicate, Unrecovered ingest.Counter
	// Background runs the DELETE of the session after Close (an owner
	// that is gone answers it late or never); nil: Close waits for it.
	Background func(func())
}

// Link is one WHEP session from sluice (the client) to a server, whose
// media it writes into the hub as the stream's publisher (hub.Publisher).
type Link struct {
	cfg    Config
	pc     *webrtc.PeerConnection
	sess   *client.Session // at the server, for DELETE
	answer *sdp.SessionDescription
	codecs []media.Codec

	attached  chan struct{} // closed by Attach: tracks may be added
	connected chan struct{} // closed once ICE and DTLS are up
	failed    chan struct{} // closed when the connection fails or closes
	failOnce  sync.Once
	why       error

	mu      sync.Mutex
	st      *hub.Writer
	closed  bool
	readers sync.WaitGroup
	// tracks answer the hub's keyframe requests (PLI or FIR to the
	// server's SSRC of the track) and count what the link lost.
	tracks ingest.Set

	closeOnce sync.Once
}

// Dial opens a WHEP session: an offer to receive audio and video in the
// codecs sluice ingests. The link is not the stream's publisher until
// Attach.
func Dial(ctx context.Context, cfg Config) (*Link, error) {
	pc, err := cfg.Peers.NewPublisherPC(nil)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	l := &Link{cfg: cfg, pc: pc, attached: make(chan struct{}), connected: make(chan struct{}), failed: make(chan struct{})}
	fail := func(err error) (*Link, error) {
		_ = pc.Close()
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return fail(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return fail(fmt.Errorf("ICE gathering: %w", ctx.Err()))
	}
	sess, answer, err := client.Offer(ctx, cfg.HTTP, cfg.Endpoint, cfg.Auth, pc.LocalDescription().SDP)
	if err != nil {
		return fail(err)
	}
	l.sess = sess
	pc.OnTrack(l.onTrack)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		l.deleteSession()
		return fail(fmt.Errorf("answer: %w", err))
	}
	if l.answer, err = parseAnswer(answer); err != nil {
		l.deleteSession()
		return fail(err)
	}
	if l.codecs, err = answerCodecs(pc, l.answer); err != nil {
		l.deleteSession()
		return fail(err)
	}
	var upOnce sync.Once
	rtc.Watch(pc, cfg.ConnectTimeout, func() { upOnce.Do(func() { close(l.connected) }) }, l.fail)
	return l, nil
}

// parseAnswer parses the server's answer, whose feedback lines say how to
// ask for repairs and keyframes.
func parseAnswer(answer string) (*sdp.SessionDescription, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return nil, fmt.Errorf("answer: %w", err)
	}
	return &d, nil
}

// answerCodecs returns the codec of each media section the server sends:
// the tracks the hub stream will have.
func answerCodecs(pc *webrtc.PeerConnection, d *sdp.SessionDescription) ([]media.Codec, error) {
	sending := map[string]bool{}
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		_, inactive := m.Attribute("inactive")
		_, recvonly := m.Attribute("recvonly")
		if m.MediaName.Port.Value != 0 && !inactive && !recvonly {
			sending[mid] = true
		}
	}
	var codecs []media.Codec
	for _, tr := range pc.GetTransceivers() {
		if !sending[tr.Mid()] {
			continue
		}
		if c := tr.Receiver().GetParameters().Codecs; len(c) > 0 {
			codecs = append(codecs, rtc.CodecOf(c[0]))
		}
	}
	if len(codecs) == 0 {
		return nil, errors.New("the answer sends no media")
	}
	return codecs, nil
}

// Codecs is the codec of each track the server sends.
func (l *Link) Codecs() []media.Codec { return l.codecs }

// Attach makes the link the publisher of the named stream in h: a new
// stream, or the one a previous link or publisher left detached.
func (l *Link) Attach(h *hub.Hub, stream string) error {
	st, err := h.Publish(stream, l, l.codecs)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
	close(l.attached)
	return nil
}

// Writer is the link's handle on the hub stream it publishes, nil
// before Attach.
func (l *Link) Writer() *hub.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// onTrack writes one of the server's tracks into the hub stream.
func (l *Link) onTrack(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
	select {
	case <-l.attached:
	case <-l.failed:
		return
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	st := l.st
	l.readers.Add(2)
	l.mu.Unlock()
	defer l.readers.Done()

	c := rtc.CodecOf(t.Codec())
	idx := st.AddTrack(c)
	fb := rtc.FeedbackOf(l.answer, midOf(l.pc, rcv), uint8(t.PayloadType()))
	// The server's session sends one continuous sequence; a gap (loss on
	// the way) is NACKed, and a sluice server answers from its ring.
	in := ingest.NewTrack(l.cfg.Ingest, ingest.TrackConfig{
		Index: idx, Codec: c, SSRC: uint32(t.SSRC()), NACK: fb.NACK, FIR: fb.FIR && !fb.PLI,
		RTCP: l.writeRTCP,
		Late: l.cfg.Late, Duplicate: l.cfg.Duplicate, Unrecovered: l.cfg.Unrecovered,
	}, st)
	l.tracks.Add(in)
	go func() {
		defer l.readers.Done()
		in.ReadRTCP(rcv.Read)
	}()
	if in.Video() {
		st.RequestTrackKeyframe(idx) // start the new link at a keyframe
	}
	in.ReadFrom(t)
}

// writeRTCP sends feedback to the server unless the link is closed.
func (l *Link) writeRTCP(pkts []rtcp.Packet) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return l.pc.WriteRTCP(pkts)
}

// RequestKeyframe asks the server for a keyframe on every video track
// Protocol names what feeds the stream, for the API (an edge pull or a
// whep:// source).
func (*Link) Protocol() string { return "whep" }

// Remote is the WHEP server's host and port.
func (l *Link) Remote() string {
	if u, err := url.Parse(l.cfg.Endpoint); err == nil {
		return u.Host
	}
	return ""
}

// (hub.Publisher).
func (l *Link) RequestKeyframe() { l.tracks.RequestKeyframe() }

// RequestTrackKeyframe asks the server for a keyframe on one track
// (hub.TrackKeyframer).
func (l *Link) RequestTrackKeyframe(track int) { l.tracks.RequestTrackKeyframe(track) }

// Stats sums what the link's tracks lost.
func (l *Link) Stats() ingest.Stats { return l.tracks.Stats() }

// midOf is the mid of the receiver's transceiver.
func midOf(pc *webrtc.PeerConnection, rcv *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			return tr.Mid()
		}
	}
	return ""
}

func (l *Link) fail(err error) {
	l.failOnce.Do(func() {
		l.why = err
		close(l.failed)
	})
}

// Connected is closed once ICE and DTLS are up.
func (l *Link) Connected() <-chan struct{} { return l.connected }

// Failed is closed when the connection fails or the link is closed.
func (l *Link) Failed() <-chan struct{} { return l.failed }

// IsFailed says whether Failed is closed.
func (l *Link) IsFailed() bool {
	select {
	case <-l.failed:
		return true
	default:
		return false
	}
}

// Err says why the link failed: ErrClosed after Close, nil while it
// works.
func (l *Link) Err() error {
	if !l.IsFailed() {
		return nil
	}
	return l.why
}

// Close detaches the link from its stream (which then waits for a
// successor), closes the PeerConnection, waits for the readers and ends
// the session at the server.
func (l *Link) Close() {
	l.closeOnce.Do(func() {
		l.fail(ErrClosed)
		l.mu.Lock()
		l.closed = true
		st := l.st
		l.mu.Unlock()
		if st != nil {
			st.Detach()
		}
		_ = l.pc.Close()
		l.readers.Wait()
		if l.cfg.Background != nil {
			l.cfg.Background(l.deleteSession)
		} else {
			l.deleteSession()
		}
	})
}

// deleteSession ends the WHEP session at the server (RFC 9725 §4.2); a
// server that is gone does not answer, which is fine.
func (l *Link) deleteSession() {
	if l.sess != nil {
		_ = l.sess.Delete()
	}
}
