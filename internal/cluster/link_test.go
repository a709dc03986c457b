package cluster

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
	"github.com/sluice-media/sluice/internal/reorder"
	"github.com/sluice-media/sluice/internal/rtc"
)

const linkSecret = "link-test-secret-0123456789"

// dropOnce is an interceptor that loses the first transmission of some
// sequence numbers on the wire (below pion's NACK responder, which keeps
// them and resends them when NACKed).
type dropOnce struct {
	interceptor.NoOp
	mu      sync.Mutex
	pending map[uint16]bool
	dropped int
}

func (d *dropOnce) NewInterceptor(string) (interceptor.Interceptor, error) { return d, nil }

func (d *dropOnce) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		d.mu.Lock()
		drop := d.pending[h.SequenceNumber]
		if drop {
			delete(d.pending, h.SequenceNumber)
			d.dropped++
		}
		d.mu.Unlock()
		if drop {
			return len(payload), nil
		}
		return w.Write(h, payload, a)
	})
}

// fakeOwner is a WHEP endpoint that checks the pull credential and sends
// one H264 track with NACK support, losing some packets once.
type fakeOwner struct {
	t     *testing.T
	drop  *dropOnce
	track *webrtc.TrackLocalStaticRTP
	pc    *webrtc.PeerConnection
	up    chan struct{}
	mu    sync.Mutex
	// fb is the feedback the owner answers with; nil: nack and nack pli.
	fb []webrtc.RTCPFeedback
	// rtcp gets the feedback the edge sends, if set.
	rtcp chan rtcp.Packet
	ssrc uint32 // of the owner's track, once answered
}

func (o *fakeOwner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodDelete {
		return
	}
	if _, err := checkPull(linkSecret, r.Header.Get(PeerHeader), "cam", time.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	offer, _ := io.ReadAll(r.Body)
	m := &webrtc.MediaEngine{}
	fb := o.fb
	if fb == nil {
		fb = []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
		RTCPFeedback: fb,
	}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		o.t.Error(err)
		return
	}
	ir := &interceptor.Registry{}
	ir.Add(o.drop) // innermost: after the responder kept the packet
	resp, _ := nack.NewResponderInterceptor()
	ir.Add(resp)
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		o.t.Error(err)
		return
	}
	o.mu.Lock()
	o.pc = pc
	o.mu.Unlock()
	sender, err := pc.AddTrack(o.track)
	if err != nil {
		o.t.Error(err)
		return
	}
	o.mu.Lock()
	o.ssrc = uint32(sender.GetParameters().Encodings[0].SSRC)
	o.mu.Unlock()
	// RTCP reaches the NACK responder only while someone reads it.
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := sender.Read(buf)
			if err != nil {
				return
			}
			if o.rtcp == nil {
				continue
			}
			pkts, _ := rtcp.Unmarshal(buf[:n])
			for _, p := range pkts {
				select {
				case o.rtcp <- p:
				default:
				}
			}
		}
	}()
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			close(o.up)
		}
	})
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	_ = pc.SetLocalDescription(answer)
	<-gathered
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Location", "/whep/cam/1")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, pc.LocalDescription().SDP)
}

// TestLinkRepairsLoss: an edge link to an owner (a pion peer standing in
// for one) negotiates the owner's one video track (audio inactive), and
// packets lost between the nodes are NACKed, resent and put back in order
// before they reach the ring.
func TestLinkRepairsLoss(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := rtc.New(rtc.Config{UDPPort: 0, ListenIPs: []string{"127.0.0.1"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close()
	h := hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: time.Second, MaxViewersPerStream: 10})
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "v", "owner")
	if err != nil {
		t.Fatal(err)
	}
	lost := map[uint16]bool{100: true, 101: true, 250: true}
	pending := map[uint16]bool{}
	for s := range lost {
		pending[s] = true
	}
	owner := &fakeOwner{t: t, drop: &dropOnce{pending: pending}, track: track, up: make(chan struct{})}
	srv := httptest.NewServer(owner)
	defer srv.Close()
	defer func() {
		owner.mu.Lock()
		if owner.pc != nil {
			_ = owner.pc.Close()
		}
		owner.mu.Unlock()
	}()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := &Cluster{
		cfg: Config{NodeID: "edge", Secret: linkSecret, ConnectTimeout: 5 * time.Second},
		hub: h, peers: engine, log: log, ctx: ctx, cancel: cancel,
		hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	l, err := dial(dctx, c, "cam", Owner{Node: "owner", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { l.close(); c.wg.Wait() }()
	if len(l.Codecs()) != 1 || l.Codecs()[0].MimeType != webrtc.MimeTypeH264 {
		t.Fatalf("link codecs %v, want the owner's one H264 track", l.Codecs())
	}
	if err := l.attach(h); err != nil {
		t.Fatal(err)
	}
	select {
	case <-owner.up:
	case <-dctx.Done():
		t.Fatal("link did not connect")
	}

	// 300 packets: an IDR slice, then non-IDR slices, one per frame.
	const n = 300
	for i := range n {
		seq := uint16(1 + i)
		nal := byte(0x41) // non-IDR slice
		if i == 0 {
			nal = 0x65 // IDR slice
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: seq, Timestamp: uint32(i) * 3000, Marker: true},
			Payload: []byte{nal, byte(i), 0xAA, 0xBB}}
		if err := track.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	st, err := h.Lookup("cam")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if pkts, _ := st.Ingested(); pkts == n {
			break
		}
		if time.Now().After(deadline) {
			pkts, _ := st.Ingested()
			t.Fatalf("ring took %d of %d packets", pkts, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	owner.drop.mu.Lock()
	dropped := owner.drop.dropped
	owner.drop.mu.Unlock()
	if dropped != len(lost) {
		t.Fatalf("the wire lost %d packets, want %d", dropped, len(lost))
	}
	// Every packet is in the ring, in sequence order.
	var last uint64
	for i := range n {
		seq := uint16(1 + i)
		p, ok := st.Packet(0, seq, nil)
		if !ok {
			t.Fatalf("packet %d missing from the ring", seq)
		}
		if p.Payload[1] != byte(i) {
			t.Fatalf("packet %d carries payload of %d", seq, p.Payload[1])
		}
		if i > 0 && p.Pos <= last {
			t.Fatalf("packet %d is at ring position %d, after %d: out of order", seq, p.Pos, last)
		}
		last = p.Pos
	}
}

// linkTo dials an edge link to owner for stream "cam" on a fresh hub and
// engine, attaches it and waits until it is connected; everything is
// closed at the end of the test.
func linkTo(t *testing.T, owner *fakeOwner, cfg Config, hc hub.Config) (*link, *hub.Hub) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	engine, err := rtc.New(rtc.Config{UDPPort: 0, ListenIPs: []string{"127.0.0.1"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	h := hub.New(hc)
	srv := httptest.NewServer(owner)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		owner.mu.Lock()
		if owner.pc != nil {
			_ = owner.pc.Close()
		}
		owner.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cfg.NodeID, cfg.Secret, cfg.ConnectTimeout = "edge", linkSecret, 5*time.Second
	c := &Cluster{cfg: cfg, hub: h, peers: engine, log: log, ctx: ctx, cancel: cancel,
		hc: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	l, err := dial(dctx, c, "cam", Owner{Node: "owner", URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.close(); c.wg.Wait() })
	if err := l.attach(h); err != nil {
		t.Fatal(err)
	}
	select {
	case <-owner.up:
	case <-dctx.Done():
		t.Fatal("link did not connect")
	}
	return l, h
}

// writeFrames sends n one-packet H264 frames from seq first, the first an
// IDR slice if idr, 1 ms apart.
func writeFrames(t *testing.T, track *webrtc.TrackLocalStaticRTP, first uint16, n int, idr bool) {
	t.Helper()
	for i := range n {
		nal := byte(0x41)
		if i == 0 && idr {
			nal = 0x65
		}
		seq := first + uint16(i)
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
			Payload: []byte{nal, byte(seq), 0xAA, 0xBB}}
		if err := track.WriteRTP(p); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLinkCountsLatePackets: a packet the edge's reorder window gave up on
// that comes after all is counted as late (cluster Stats), as a
// publisher's is.
func TestLinkCountsLatePackets(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "v", "owner")
	if err != nil {
		t.Fatal(err)
	}
	// No NACK offered: the lost packet is not asked for again.
	owner := &fakeOwner{t: t, drop: &dropOnce{pending: map[uint16]bool{20: true}}, track: track, up: make(chan struct{}),
		fb: []webrtc.RTCPFeedback{{Type: "nack", Parameter: "pli"}}}
	l, _ := linkTo(t, owner, Config{Ingest: ingest.Options{Reorder: reorder.Config{MaxDelay: 50 * time.Millisecond}}},
		hub.Config{RingPackets: 1024, PLIMinInterval: time.Second, MaxViewersPerStream: 10})
	// Stats reads the registry too, which this test has none of.
	counts := &l.c.counts
	writeFrames(t, track, 1, 40, true)
	deadline := time.Now().Add(5 * time.Second)
	for counts.pullUnrecovered.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the edge never gave up on the lost packet")
		}
		time.Sleep(10 * time.Millisecond)
	}
	writeFrames(t, track, 20, 1, false) // now it comes
	for counts.pullLate.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("late packet not counted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if u, l := counts.pullUnrecovered.Load(), counts.pullLate.Load(); u != 1 || l != 1 {
		t.Fatalf("unrecovered %d, late %d; want 1 and 1", u, l)
	}
}

// TestLinkKeyframeRequests: the edge asks its owner for keyframes as a
// WHIP session asks its publisher: on the track's own SSRC, with a sender
// SSRC, every stream.pli_interval while no keyframe comes, and as a FIR
// when the owner offered "ccm fir" only.
func TestLinkKeyframeRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		fb   []webrtc.RTCPFeedback
		fir  bool
	}{
		{"pli", []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}, false},
		{"fir", []webrtc.RTCPFeedback{{Type: "ccm", Parameter: "fir"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Cleanup(func() { goleak.VerifyNone(t) })
			track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000}, "v", "owner")
			if err != nil {
				t.Fatal(err)
			}
			owner := &fakeOwner{t: t, drop: &dropOnce{}, track: track, up: make(chan struct{}), fb: tc.fb, rtcp: make(chan rtcp.Packet, 256)}
			linkTo(t, owner, Config{Ingest: ingest.Options{PLIInterval: 200 * time.Millisecond}},
				hub.Config{RingPackets: 1024, PLIMinInterval: 10 * time.Millisecond, MaxViewersPerStream: 10})
			owner.mu.Lock()
			ssrc := owner.ssrc
			owner.mu.Unlock()
			// An IDR, then 600 ms of other frames: the periodic
			// request asks again after 200 ms without a keyframe.
			start := time.Now()
			writeFrames(t, track, 1, 1, true)
			var periodic int
			for seq := uint16(2); time.Since(start) < 600*time.Millisecond; seq++ {
				writeFrames(t, track, seq, 1, false)
			drain:
				for {
					select {
					case p := <-owner.rtcp:
						var media, sender uint32
						switch p := p.(type) {
						case *rtcp.PictureLossIndication:
							if tc.fir {
								t.Fatalf("PLI %+v to an owner that offered only FIR", p)
							}
							media, sender = p.MediaSSRC, p.SenderSSRC
						case *rtcp.FullIntraRequest:
							if !tc.fir || len(p.FIR) != 1 {
								t.Fatalf("FIR %+v to an owner that offered PLI", p)
							}
							media, sender = p.FIR[0].SSRC, p.SenderSSRC
						default:
							continue
						}
						if media != ssrc || sender == 0 {
							t.Fatalf("keyframe request for SSRC %d from sender %d, want %d from a non-zero sender", media, sender, ssrc)
						}
						if time.Since(start) > 150*time.Millisecond {
							periodic++
						}
					default:
						break drain
					}
				}
			}
			if periodic == 0 {
				t.Fatal("no keyframe request after pli_interval without a keyframe")
			}
		})
	}
}
