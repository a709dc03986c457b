// Package whep is the egress side: one Session per WHEP viewer, from SDP
// offer to a cursor in the stream's ring whose packets go out with this
// viewer's RTP headers. Viewer keyframe requests go back to the publisher.
package whep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/metrics"
	"github.com/sluice-media/sluice/internal/rtc"
)

// ErrNotReady means the stream's publisher has not started sending yet.
var ErrNotReady = errors.New("stream has no media yet")

// peerFactory is what a Session needs from rtc.Engine.
type peerFactory interface {
	NewViewerPC(codecs []media.Codec, bwe bool, offer *sdp.SessionDescription) (*webrtc.PeerConnection, *rtc.Direct, error)
}

// Deps are the long-lived parts a Session uses.
type Deps struct {
	Peers          peerFactory
	Hub            *hub.Hub
	ConnectTimeout time.Duration
	ReadyTimeout   time.Duration // how long to wait for a publisher still connecting
	// Fanout runs the egress workers that forward to viewers; shared by
	// every session of the server (a private one when nil).
	Fanout *Fanout
	// WaitForPublisher is how long a viewer of a stream nobody publishes
	// waits for a publisher; 0 refuses it at once (ErrNotFound).
	WaitForPublisher time.Duration
	// Detach lets connected viewers leave pion (detach.go).
	Detach  bool
	Log     *slog.Logger
	Metrics *metrics.Metrics // nil: counted nowhere
}

// Session is one viewer's PeerConnection reading one hub stream.
type Session struct {
	id       string
	stream   *hub.Stream
	cursor   *hub.Cursor
	pcRef    atomic.Pointer[webrtc.PeerConnection] // nil once detached from pion (detach.go)
	direct   *rtc.Direct                           // the RTP path below pion, when the connection can use it
	onDirect atomic.Bool                           // RTP goes through direct

	// Detaching from pion (detach.go).
	canDetach   bool        // under mu
	detached    atomic.Bool // pc is closed; direct does its ICE, RTCP and DTLS close
	detachTimer *time.Timer // under mu
	remoteICE   [2]string   // under mu, once detached: the viewer's ICE ufrag and password
	rtcpTracks  []*outTrack // set before detaching: the tracks detached RTCP may concern
	rtcpMu      sync.Mutex  // one RTCP packet at a time: pion's readers, then direct's
	log         *slog.Logger
	answer      string
	onClose     func(reason error)
	tracks      []*outTrack // by hub track index (every simulcast layer); nil where the viewer takes none
	releases    []func()    // the demand for the derived tracks taken (hub.Stream.Demand)
	stats       *metrics.Viewer

	// Layer choice and congestion (layer.go); nil without video.
	layers   *layerControl
	video    *outTrack
	applied  uint64       // worker-only: the decision applied to the cursor
	switches uint64       // worker-only: the cursor's switches seen
	curTrack atomic.Int32 // the hub track of the video being sent

	// Counted by forward, read by the metrics at scrape time.
	packetsOut, bytesOut atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	mu     sync.Mutex // orders start against Close
	closed bool
	wg     sync.WaitGroup

	fanout     *Fanout
	worker     *worker             // set by the Fanout, under its lock
	ended      bool                // worker-only: the stream ended, nothing more to pump
	reportedAt time.Time           // worker-only: when the last sender reports went
	reportBuf  []rtcp.Packet       // worker-only
	rtcpRest   []byte              // under rtcpMu: grows to the largest compound packet once TWCC is taken out
	rtcpRR     rtcp.ReceiverReport // under rtcpMu: the last receiver report read in place (takeRR)
	rtcpPkts   []rtcp.Packet       // under rtcpMu: scratch
	endReason  atomic.Pointer[error]
	closeOnce  sync.Once
	done       chan struct{}
}

// New negotiates a viewer session for the named stream. Media starts at the
// newest cached keyframe once the viewer connects. onClose runs once, with
// the reason Close got, when the session ends for any reason.
func New(ctx context.Context, d Deps, streamName, offer, remote string, onClose func(reason error)) (*Session, error) {
	parsed, err := rtc.ParseOffer(offer)
	if err != nil {
		return nil, err
	}
	st, err := lookup(ctx, d, streamName)
	if err != nil {
		return nil, err
	}
	joined := time.Now() // setup time counts from here, not from a wait for the publisher
	tracks, err := waitTracks(ctx, st, d.ReadyTimeout)
	if err != nil {
		return nil, err
	}
	take, err := match(tracks, parsed)
	if err != nil {
		return nil, err
	}
	cursor, err := st.Join()
	if err != nil {
		return nil, err
	}
	s := &Session{id: rtc.NewID(), stream: st, cursor: cursor, onClose: onClose, fanout: d.Fanout, done: make(chan struct{})}
	if s.fanout == nil {
		s.fanout = NewFanout()
	}
	s.stats = d.Metrics.Viewer(streamName, joined)
	s.log = d.Log.With("stream", streamName, "session", s.id, "remote", remote)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.tracks = make([]*outTrack, st.TrackCount())

	codecs := make([]media.Codec, len(take))
	leader := -1
	for i, t := range take {
		codecs[i] = t.Codec
		if t.Codec.Kind() == media.KindVideo {
			if len(st.Layers(t.Index)) > 0 && leader < 0 {
				leader = t.Index
			}
			if s.layers == nil {
				s.layers = newLayerControl(st, leader)
				s.curTrack.Store(int32(t.Index))
			}
		}
	}
	if s.layers != nil {
		s.layers.start(time.Now())
	}
	pc, direct, err := d.Peers.NewViewerPC(codecs, leader >= 0, parsed)
	if err != nil {
		cursor.Close()
		s.stats.Close("")
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	s.direct = direct
	s.pcRef.Store(pc)
	fail := func(err error) (*Session, error) {
		s.cancel()
		_ = pc.Close()
		s.wg.Wait()
		s.release()
		cursor.Close()
		s.stats.Close("")
		return nil, err
	}
	trimOffer(parsed, take)
	trimmed, err := parsed.Marshal()
	if err != nil {
		return fail(fmt.Errorf("%w: %v", rtc.ErrBadOffer, err))
	}
	if err := rtc.SetOffer(pc, string(trimmed)); err != nil {
		return fail(err)
	}
	for _, t := range take {
		ot := newOutTrack(t.Codec, "sluice-"+streamName)
		ot.index = t.Index
		sender, err := pc.AddTrack(ot)
		if err != nil {
			return fail(fmt.Errorf("add %s track: %w", t.Codec.Kind(), err))
		}
		s.tracks[t.Index] = ot
		if t.Derived {
			// The transcoder starts now, so its first packets are in the
			// ring by the time the viewer connects.
			s.releases = append(s.releases, st.Demand(t.Index))
		}
		for _, l := range st.Layers(t.Index) {
			if l.Track < len(s.tracks) {
				s.tracks[l.Track] = ot
			}
		}
		if t.Codec.Kind() == media.KindVideo && s.video == nil {
			s.video = ot
		}
		s.wg.Go(func() { s.readRTCP(sender, ot) })
	}
	if s.answer, err = rtc.Answer(ctx, pc); err != nil {
		return fail(err)
	}
	s.answer = withOpusStereo(s.answer, codecs)
	s.canDetach = d.Detach && s.direct != nil && !strings.Contains(s.answer, "m=application")
	s.stats.Negotiated(s.sent)
	// The client cannot connect before it has the answer, so watching from
	// here on misses nothing.
	rtc.Watch(pc, d.ConnectTimeout, s.start, s.pcDown)
	s.log.Info("viewer session created", "tracks", len(take))
	return s, nil
}

// lookup finds the stream, waiting up to WaitForPublisher for it to be
// published.
func lookup(ctx context.Context, d Deps, name string) (*hub.Stream, error) {
	st, err := d.Hub.Lookup(name)
	if err == nil || d.WaitForPublisher <= 0 {
		return st, err
	}
	wctx, cancel := context.WithTimeout(ctx, d.WaitForPublisher)
	defer cancel()
	if st, err = d.Hub.Await(wctx, name); err != nil {
		return nil, fmt.Errorf("%w: %q not published within %s", hub.ErrNotFound, name, d.WaitForPublisher)
	}
	return st, nil
}

// waitTracks returns the stream's tracks once all are known, or what is
// known after the ready timeout: a publisher still connecting should not
// turn viewers away, nor hang them forever.
func waitTracks(ctx context.Context, st *hub.Stream, timeout time.Duration) ([]hub.Track, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-st.Ready():
	case <-t.C:
	case <-st.Done():
		return nil, hub.ErrEnded
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	tracks := st.Tracks()
	if len(tracks) == 0 {
		return nil, fmt.Errorf("%w (waited %s)", ErrNotReady, timeout)
	}
	return tracks, nil
}

// ID is the session's random resource id.
func (s *Session) ID() string { return s.id }

// Answer is the SDP answer for the client.
func (s *Session) Answer() string { return s.answer }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.done }

// start runs when the viewer connects: media begins at the newest keyframe.
func (s *Session) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.stats.Connected()
	s.log.Info("viewer connected")
	s.updateDest()
	s.startDirect()
	if sctp := s.peer().SCTP(); sctp != nil {
		sctp.Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) { s.updateDest() })
	}
	s.applyLayer()
	s.cursor.SeekKeyframe()
	s.fanout.add(s)
	if s.canDetach {
		s.detachTimer = time.AfterFunc(detachDelay, s.detach)
	}
}

// updateDest tells the direct path where the viewer's packets go (it
// changes with an ICE restart).
func (s *Session) updateDest() {
	if s.detached.Load() {
		return // the direct path follows the viewer itself
	}
	pc := s.peer()
	if pc == nil {
		return
	}
	if s.direct != nil {
		if err := s.direct.UpdateRoute(pc); err != nil {
			s.log.Debug("RTP through pion", "reason", err)
		}
	}
}

// startDirect moves the viewer's RTP to the direct path (rtc.Direct) when
// the connection allows it; otherwise pion's path stays.
func (s *Session) startDirect() {
	if s.direct == nil {
		return
	}
	if err := s.direct.Start(s.peer()); err != nil {
		s.log.Info("RTP through pion", "reason", err)
		return
	}
	s.direct.SetTransportCC(transportCCID(s.peer()))
	for _, t := range s.tracks {
		if t != nil {
			t.direct.Store(s.direct)
		}
	}
	s.onDirect.Store(true)
}

// transportCCID is the header extension ID negotiated for transport-wide
// sequence numbers, 0 if none.
func transportCCID(pc *webrtc.PeerConnection) uint8 {
	for _, tr := range pc.GetTransceivers() {
		if sender := tr.Sender(); sender != nil {
			for _, e := range sender.GetParameters().HeaderExtensions {
				if e.URI == sdp.TransportCCURI {
					return uint8(e.ID)
				}
			}
		}
	}
	return 0
}

// RTPPath says which way the viewer's RTP goes: "direct" (rtc.Direct) or
// "pion" (pion's track writer: before connecting, or when the connection
// cannot use the direct path).
func (s *Session) RTPPath() string {
	if s.onDirect.Load() && s.direct.Routed() {
		return "direct"
	}
	return "pion"
}

// pump forwards what the cursor holds to the viewer, without waiting; its
// worker calls it in each pass. It allocates nothing per packet. Packets
// of the direct path wait in the worker's batch for its flush.
func (s *Session) pump(batch *rtc.Batch) {
	if s.ended {
		return
	}
	now := time.Now()
	s.sendReports(now)
	s.applyLayer()
	defer s.noteSwitches(false)
	// Counted once per pass: two atomic additions per packet and viewer
	// cost more than the counting.
	var packets, bytes uint64
	defer func() {
		if packets > 0 {
			s.packetsOut.Add(packets)
			s.bytesOut.Add(bytes)
		}
	}()
	for {
		p, restart, ok, err := s.cursor.TryNext()
		if err != nil {
			// The publisher left (and no successor came within the grace
			// period, or one with other codecs): closing the PeerConnection
			// ends the viewer's tracks; pion's state change then runs Close.
			s.ended = true
			reason := err // its own variable: &err would put err on the heap for every packet
			s.endReason.Store(&reason)
			if s.detached.Load() {
				go s.Close(nil)
			} else {
				s.wg.Go(func() { _ = s.peer().Close() })
			}
			return
		}
		if !ok {
			return
		}
		if t := s.tracks[p.Track]; t != nil && t.write(p, restart, now, batch) == nil {
			packets++
			bytes += uint64(len(p.Payload))
		}
	}
}

// readRTCP reads what pion decrypted of the viewer's RTCP for one
// sender, until the PeerConnection closes (or the session detaches from
// pion).
func (s *Session) readRTCP(sender *webrtc.RTPSender, ot *outTrack) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		s.rtcpIn(buf[:n], ot)
	}
}

// rtcpIn passes viewer keyframe requests (PLI, FIR) to the stream, which
// rate-limits them towards the publisher, answers NACKs from the
// stream's ring and feeds the metrics and the layer choice. tracks are
// those the packet may concern: pion's reader passes its sender's, the
// detached path every one.
func (s *Session) rtcpIn(raw []byte, tracks ...*outTrack) {
	s.rtcpMu.Lock()
	defer s.rtcpMu.Unlock()
	// Transport-wide feedback (about ten a second from each viewer of a
	// simulcast stream) and the receiver report (once a second from every
	// viewer) are read in place, without allocating; the rest (keyframe
	// requests, NACKs, REMB) is unmarshalled.
	var tw twccCount
	var hasRR bool
	s.rtcpRest, tw = splitTWCC(raw, s.rtcpRest[:0])
	s.rtcpRest, hasRR = takeRR(s.rtcpRest, &s.rtcpRR)
	pkts := s.rtcpPkts[:0]
	if hasRR {
		pkts = append(pkts, &s.rtcpRR)
	}
	if len(s.rtcpRest) > 0 {
		more, err := rtcp.Unmarshal(s.rtcpRest)
		if err != nil && !hasRR {
			return
		}
		pkts = append(pkts, more...)
	}
	s.rtcpPkts = pkts
	for _, t := range tracks {
		if b := t.bound.Load(); b != nil {
			s.stats.ReceivedRTCP(pkts, b.ssrc, t.codec.ClockRate)
		}
	}
	if s.layers != nil {
		s.layers.feedback(pkts, tw, s.videoSSRC(), s.bytesOut.Load(), time.Now())
	}
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			// To the layer this viewer gets (the stream's video
			// without simulcast).
			s.stream.RequestTrackKeyframe(int(s.curTrack.Load()))
		case *rtcp.TransportLayerNack:
			for _, t := range tracks {
				t.answerNACK(s.stream, p)
			}
		}
	}
}

// Close ends the session and waits for its goroutines. The reason is
// logged; nil means the client asked (DELETE) or the server is stopping.
func (s *Session) Close(reason error) {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.fanout.remove(s) // the worker lets go of the session
		if r := s.endReason.Load(); r != nil {
			reason = *r
		}
		s.cancel()
		if s.detachTimer != nil {
			s.detachTimer.Stop()
		}
		if s.direct != nil {
			s.direct.Release(!errors.Is(reason, rtc.ErrPeerClosed))
		}
		if pc := s.peer(); pc != nil {
			_ = pc.Close()
		}
		s.wg.Wait()
		s.release()
		s.cursor.Close()
		s.stats.Close(rtc.FailureReason(reason))
		switch {
		case errors.Is(reason, hub.ErrEnded):
			s.log.Info("viewer session closed: publisher left")
		case reason != nil && !errors.Is(reason, rtc.ErrClosed):
			s.log.Warn("viewer session closed", "err", reason)
		default:
			s.log.Info("viewer session closed")
		}
		close(s.done)
		if s.onClose != nil {
			s.onClose(reason)
		}
	})
}

// release ends the session's demand for derived tracks.
func (s *Session) release() {
	for _, r := range s.releases {
		r()
	}
	s.releases = nil
}

// PeerConnection is the session's pion PeerConnection, for trickle ICE and
// ICE restarts; nil once the session detached from pion.
func (s *Session) PeerConnection() *webrtc.PeerConnection { return s.pcRef.Load() }

// peer is the PeerConnection, nil once detached.
func (s *Session) peer() *webrtc.PeerConnection { return s.pcRef.Load() }
