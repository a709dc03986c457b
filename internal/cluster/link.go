package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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

// errLinkClosed is the reason of a link closed by this node.
var errLinkClosed = errors.New("closed by this node")

// link is one WHEP session from this node (the client) to a stream's
// owner, whose media it writes into this node's hub as the stream's
// publisher (hub.Publisher).
type link struct {
	c      *Cluster
	stream string
	owner  Owner
	pc     *webrtc.PeerConnection
	sess   *client.Session // at the owner, for DELETE
	answer *sdp.SessionDescription
	codecs []media.Codec

	attached chan struct{} // closed by attach: tracks may be added
	failed   chan struct{} // closed when the connection fails or closes
	failOnce sync.Once
	why      error

	mu      sync.Mutex
	st      *hub.Writer
	closed  bool
	readers sync.WaitGroup
	// tracks answer the hub's keyframe requests (PLI or FIR to the
	// owner's SSRC of the track) and count what the edge lost.
	tracks ingest.Set

	closeOnce sync.Once
}

// dial opens a WHEP session to the owner of stream: an offer to receive
// audio and video in the codecs sluice ingests, signed as a cluster pull.
func dial(ctx context.Context, c *Cluster, stream string, owner Owner) (*link, error) {
	pc, err := c.peers.NewPublisherPC(nil)
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	l := &link{c: c, stream: stream, owner: owner, pc: pc, attached: make(chan struct{}), failed: make(chan struct{})}
	fail := func(err error) (*link, error) {
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
	sess, answer, err := l.post(ctx, pc.LocalDescription().SDP)
	if err != nil {
		return fail(err)
	}
	l.sess = sess
	pc.OnTrack(l.onTrack)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		l.deleteSession()
		return fail(fmt.Errorf("owner's answer: %w", err))
	}
	if l.answer, err = parseAnswer(answer); err != nil {
		l.deleteSession()
		return fail(err)
	}
	if l.codecs, err = answerCodecs(pc, l.answer); err != nil {
		l.deleteSession()
		return fail(err)
	}
	rtc.Watch(pc, c.cfg.ConnectTimeout, func() {}, l.fail)
	return l, nil
}

// post sends the offer to the owner's WHEP endpoint (RFC 9725 §4.2),
// signed as a pull of the stream, and returns the session and the answer.
func (l *link) post(ctx context.Context, offer string) (*client.Session, string, error) {
	// A simulcast stream's best layer: the edge's own viewers choose
	// from what the edge has (a no-op for a stream without simulcast).
	endpoint := strings.TrimSuffix(l.owner.URL, "/") + "/whep/" + url.PathEscape(l.stream) + "?layer=high"
	sess, answer, err := client.Offer(ctx, l.c.hc, endpoint, l.sign, offer)
	if err != nil {
		return nil, "", fmt.Errorf("owner %s: %w", l.owner.Node, err)
	}
	return sess, answer, nil
}

// sign is the link's credentials for each request to the owner: a fresh
// pull signature.
func (l *link) sign(h http.Header) {
	h.Set(PeerHeader, signPull(l.c.cfg.Secret, l.c.cfg.NodeID, l.stream, time.Now()))
}

// parseAnswer parses the owner's answer, whose feedback lines say how to
// ask for repairs and keyframes.
func parseAnswer(answer string) (*sdp.SessionDescription, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return nil, fmt.Errorf("owner's answer: %w", err)
	}
	return &d, nil
}

// answerCodecs returns the codec of each media section the owner sends:
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
		return nil, errors.New("owner's answer sends no media")
	}
	return codecs, nil
}

// attach makes the link the publisher of its stream in h: a new stream,
// or the one a previous link or publisher left detached.
func (l *link) attach(h *hub.Hub) error {
	st, err := h.Publish(l.stream, l, l.codecs)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.st = st
	l.mu.Unlock()
	close(l.attached)
	return nil
}

func (l *link) hubStream() *hub.Writer {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st
}

// onTrack writes one of the owner's tracks into the hub stream.
func (l *link) onTrack(t *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
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
	// The owner's session sends one continuous sequence; a gap (loss
	// between the nodes) is NACKed, and the owner answers from its ring.
	in := ingest.NewTrack(l.c.cfg.Ingest, ingest.TrackConfig{
		Index: idx, Codec: c, SSRC: uint32(t.SSRC()), NACK: fb.NACK, FIR: fb.FIR && !fb.PLI,
		RTCP: l.writeRTCP,
		Late: &l.c.counts.pullLate, Duplicate: &l.c.counts.pullDup, Unrecovered: &l.c.counts.pullUnrecovered,
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

// writeRTCP sends feedback to the owner unless the link is closed.
func (l *link) writeRTCP(pkts []rtcp.Packet) error {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return errLinkClosed
	}
	return l.pc.WriteRTCP(pkts)
}

// RequestKeyframe asks the owner for a keyframe on every video track
// (hub.Publisher); the owner passes it on to its publisher, rate-limited.
func (l *link) RequestKeyframe() { l.tracks.RequestKeyframe() }

// RequestTrackKeyframe asks the owner for a keyframe on one track
// (hub.TrackKeyframer).
func (l *link) RequestTrackKeyframe(track int) { l.tracks.RequestTrackKeyframe(track) }

// midOf is the mid of the receiver's transceiver.
func midOf(pc *webrtc.PeerConnection, rcv *webrtc.RTPReceiver) string {
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == rcv {
			return tr.Mid()
		}
	}
	return ""
}

func (l *link) fail(err error) {
	l.failOnce.Do(func() {
		l.why = err
		close(l.failed)
	})
}

func (l *link) isFailed() bool {
	select {
	case <-l.failed:
		return true
	default:
		return false
	}
}

// reason says why the link ended.
func (l *link) reason() string {
	if !l.isFailed() || l.why == nil {
		return "owner changed"
	}
	return l.why.Error()
}

// close detaches the link from its stream (which then waits for a
// successor), closes the PeerConnection, waits for the readers and ends
// the session at the owner in the background.
func (l *link) close() {
	l.closeOnce.Do(func() {
		l.fail(errLinkClosed)
		l.mu.Lock()
		l.closed = true
		st := l.st
		l.mu.Unlock()
		if st != nil {
			st.Detach()
		}
		_ = l.pc.Close()
		l.readers.Wait()
		l.c.wg.Go(l.deleteSession)
	})
}

// deleteSession ends the WHEP session at the owner (RFC 9725 §4.2); an
// owner that is gone does not answer, which is fine.
func (l *link) deleteSession() {
	if l.sess != nil {
		_ = l.sess.Delete()
	}
}
