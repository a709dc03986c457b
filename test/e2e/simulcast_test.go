package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// The simulcast publisher sends three layers of the clip, told apart by a
// tag SEI in every access unit and padded to three bit rates: q about
// 130 kbit/s, h about 500 kbit/s, f about 1.4 Mbit/s. The RIDs are given
// high first: the server ranks layers by what they send, not by name.
var scRIDs = []string{"f", "q", "h"}

var scSizes = map[string]int{"q": 650, "h": 2500, "f": 7000}

// layerTag is an SEI (user data unregistered) that names the layer.
func layerTag(rid string) []byte {
	uuid := []byte("sluice-layer-00" + rid)
	out := append([]byte{0x06, 0x05, byte(len(uuid))}, uuid...)
	return append(out, 0x80)
}

// layerOf returns the RID an access unit was tagged with.
func layerOf(au [][]byte) string {
	for _, n := range au {
		if i := bytes.Index(n, []byte("sluice-layer-00")); i >= 0 && i+16 <= len(n) {
			return string(n[i+15 : i+16])
		}
	}
	return ""
}

// simulcastFeed sends every layer's access unit and one Opus packet per
// 20 ms pace step until ctx ends. A layer whose SSRC got a keyframe
// request restarts the clip at its first access unit (an IDR), as an
// encoder would send a keyframe.
func simulcastFeed(ctx context.Context, pub *client.Publisher, clip [][][]byte) <-chan struct{} {
	return simulcastFeedSized(ctx, pub, clip, scSizes)
}

// simulcastFeedSized is simulcastFeed with the access unit sizes of each
// layer (by RID).
func simulcastFeedSized(ctx context.Context, pub *client.Publisher, clip [][][]byte, sizes map[string]int) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		start := time.Now()
		frame := make([]int, len(scRIDs))
		plis := make([]int, len(scRIDs))
		for i := 0; ; i++ {
			pts := time.Duration(i) * client.OpusFrameDuration
			_ = pub.WriteOpus(client.OpusTestPacket(uint16(i)), pts)
			if i%2 == 0 {
				for l, rid := range scRIDs {
					if n := pub.LayerKeyframeRequests(l); n != plis[l] {
						plis[l], frame[l] = n, 0
					}
					au := clip[frame[l]%len(clip)]
					frame[l]++
					au = padAU(withTag(au, rid), sizes[rid])
					_ = pub.WriteH264Layer(l, au, pts)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * client.OpusFrameDuration))):
			}
		}
	}()
	return done
}

// withTag puts the layer tag before the access unit's first slice.
func withTag(au [][]byte, rid string) [][]byte {
	out := make([][]byte, 0, len(au)+1)
	tagged := false
	for _, n := range au {
		if t := n[0] & 0x1f; !tagged && (t == 1 || t == 5) {
			out = append(out, layerTag(rid))
			tagged = true
		}
		out = append(out, n)
	}
	return out
}

// limiter is a token bucket on the viewer's receive path: a bottleneck
// link that drops what exceeds its rate. A rate of 0 lets everything
// through.
type limiter struct {
	mu      sync.Mutex
	rate    float64 // bytes per second
	burst   float64
	tokens  float64
	last    time.Time
	dropped int
}

func (l *limiter) set(bitsPerSecond float64) {
	l.mu.Lock()
	// The queue holds 100 ms, or at least 16 kB: a keyframe fits.
	l.rate, l.burst = bitsPerSecond/8, max(bitsPerSecond/8/10, 16000)
	l.tokens = l.burst
	l.mu.Unlock()
}

func (l *limiter) admit(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.rate == 0 {
		l.last = now
		return true
	}
	l.tokens = min(l.tokens+now.Sub(l.last).Seconds()*l.rate, l.burst)
	l.last = now
	if l.tokens < float64(n) {
		l.dropped++
		return false
	}
	l.tokens -= float64(n)
	return true
}

type limitedConn struct {
	net.PacketConn
	l *limiter
}

func (c *limitedConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || c.l.admit(n) {
			return n, addr, err
		}
	}
}

// auRecord is one access unit a viewer received, with where its packets
// sat in the viewer's RTP sequence.
type auRecord struct {
	rid      string
	idr      bool
	ts       uint32
	at       time.Time
	firstSeq uint16 // sequence number of the AU's first packet
	prevSeq  uint16 // of the packet received before it
	prevTS   uint32 // its timestamp
	contig   bool   // the packet before it was received right before it
}

// scViewer collects a viewer's access units with their RTP sequence
// context.
type scViewer struct {
	mu    sync.Mutex
	pkts  []rtp.Header // video packets in arrival order
	aus   []auRecord
	start map[uint32]int // timestamp -> index in pkts of its first packet
}

func (s *scViewer) onRTP(kind webrtc.RTPCodecType, p *rtp.Packet) {
	if kind != webrtc.RTPCodecTypeVideo {
		return
	}
	s.mu.Lock()
	if _, ok := s.start[p.Timestamp]; !ok {
		s.start[p.Timestamp] = len(s.pkts)
	}
	s.pkts = append(s.pkts, p.Header)
	s.mu.Unlock()
}

func (s *scViewer) collect(ctx context.Context, v *client.Viewer) {
	for {
		select {
		case <-ctx.Done():
			return
		case au := <-v.AccessUnits():
			r := auRecord{rid: layerOf(au.NALUs), idr: client.IsIDR(au.NALUs), ts: au.RTPTimestamp, at: time.Now()}
			s.mu.Lock()
			if i, ok := s.start[au.RTPTimestamp]; ok && i > 0 {
				r.firstSeq, r.prevSeq, r.prevTS = s.pkts[i].SequenceNumber, s.pkts[i-1].SequenceNumber, s.pkts[i-1].Timestamp
				r.contig = true
			}
			s.aus = append(s.aus, r)
			s.mu.Unlock()
		}
	}
}

func (s *scViewer) snapshot() []auRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]auRecord(nil), s.aus...)
}

// waitFor polls the viewer's access units until cond holds, at most d.
func (s *scViewer) waitFor(d time.Duration, cond func([]auRecord) bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond(s.snapshot()) {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return cond(s.snapshot())
}

// settledOn reports whether the last d of access units are all of rid.
func settledOn(aus []auRecord, rid string, d time.Duration) bool {
	if len(aus) == 0 || time.Since(aus[0].at) < d {
		return false
	}
	for i := len(aus) - 1; i >= 0 && time.Since(aus[i].at) < d; i-- {
		if aus[i].rid != rid {
			return false
		}
	}
	return aus[len(aus)-1].rid == rid && time.Since(aus[len(aus)-1].at) < time.Second
}

// checkSwitches checks every layer change among aus: the first access
// unit of the new layer is an IDR, its first packet follows the packet
// before it by one sequence number, and its timestamp moves forward by at
// most 100 ms. It returns how many switches it saw.
func checkSwitches(t *testing.T, aus []auRecord) int {
	t.Helper()
	n := 0
	for i := 1; i < len(aus); i++ {
		if aus[i].rid == aus[i-1].rid {
			continue
		}
		n++
		a := aus[i]
		if !a.idr {
			t.Errorf("switch %s→%s at AU %d: not an IDR", aus[i-1].rid, a.rid, i)
		}
		if !a.contig || a.firstSeq != a.prevSeq+1 {
			t.Errorf("switch %s→%s at AU %d: sequence %d after %d", aus[i-1].rid, a.rid, i, a.firstSeq, a.prevSeq)
		}
		if d := int32(a.ts - a.prevTS); d <= 0 || d > 9000 {
			t.Errorf("switch %s→%s at AU %d: timestamp moved by %d ticks", aus[i-1].rid, a.rid, i, d)
		}
	}
	return n
}

func layerState(t *testing.T, base, session string) map[string]any {
	t.Helper()
	r := send(t, nil, http.MethodGet, base+"/v1/sessions/"+session+"/layer", nil, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET layer: %d %s", r.status, r.body)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(r.body), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func sessionID(v *client.Viewer) string {
	loc := v.Location()
	return loc[strings.LastIndex(loc, "/")+1:]
}

func publishSimulcast(t *testing.T, base string) (*client.Publisher, context.CancelFunc, <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/sc", client.PublishOptions{Simulcast: scRIDs})
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(context.Background())
	done := simulcastFeed(fctx, pub, loadClip(t))
	// Let the server measure every layer's bit rate.
	time.Sleep(1500 * time.Millisecond)
	return pub, stop, done
}

// TestSimulcastBandwidthAdaptation: a viewer behind a link that carries
// only the low layer settles on it; once the limit is lifted it climbs to
// the high layer, each switch at an IDR with continuous sequence numbers.
func TestSimulcastBandwidthAdaptation(t *testing.T) {
	base := startServer(t, nil)
	pub, stop, fed := publishSimulcast(t, base)
	defer func() { stop(); <-fed; pub.Close() }()

	var st map[string]any
	// The API lists one video track with three layers, ranked by bit
	// rate whatever order the publisher gave them in.
	r := send(t, nil, http.MethodGet, base+"/v1/streams/sc", nil, "")
	var stream struct {
		Tracks []struct {
			Kind   string
			Layers []struct{ RID string }
		}
	}
	if r.status != http.StatusOK || json.Unmarshal([]byte(r.body), &stream) != nil {
		t.Fatalf("GET stream: %d %s", r.status, r.body)
	}
	var ranked []string
	for _, tr := range stream.Tracks {
		for _, l := range tr.Layers {
			ranked = append(ranked, l.RID)
		}
	}
	if len(stream.Tracks) != 2 || strings.Join(ranked, ",") != "q,h,f" {
		t.Fatalf("stream tracks: %s", r.body)
	}

	lim := &limiter{}
	lim.set(350_000)
	sv := &scViewer{start: map[uint32]int{}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Every video packet must carry a transport-wide sequence number: the
	// estimate below rests on the viewer's TWCC feedback.
	var videoPackets, withTWCC atomic.Int64
	onRTP := func(kind webrtc.RTPCodecType, p *rtp.Packet) {
		if kind == webrtc.RTPCodecTypeVideo {
			videoPackets.Add(1)
			if len(p.Header.GetExtensionIDs()) > 0 {
				withTWCC.Add(1)
			}
		}
		sv.onRTP(kind, p)
	}
	v, err := client.View(ctx, base+"/whep/sc", client.ViewOptions{
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}, CongestionFeedback: true,
		OnRTP: onRTP, WrapConn: func(c net.PacketConn) net.PacketConn { return &limitedConn{c, lim} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// Simulcast viewers take sluice's own SRTP writer too, which then
	// numbers the packets for TWCC itself.
	if paths := waitRTPPaths(t, base, "", map[string]int{"direct": 1}); paths["direct"] != 1 {
		t.Errorf("viewer RTP paths = %v, want 1 direct", paths)
	}
	// A simulcast publisher stays on pion's path (webrtc.detach_publishers
	// leaves it), and the API says so.
	if s := publisherSession(t, base, "pion"); s.RTPPath != "pion" || s.Detached {
		t.Errorf("simulcast publisher session %+v, want it on pion's path", s)
	}
	defer func() {
		if n, tw := videoPackets.Load(), withTWCC.Load(); n == 0 || tw != n {
			t.Errorf("%d of %d video packets carried a header extension (transport-wide sequence number), want all", tw, n)
		}
	}()
	cctx, stopCollect := context.WithCancel(context.Background())
	collected := make(chan struct{})
	go func() { defer close(collected); sv.collect(cctx, v) }()
	defer func() { stopCollect(); <-collected }()

	// Limited: the viewer settles on q (after any tries of h) for 2 s.
	if !sv.waitFor(25*time.Second, func(aus []auRecord) bool { return settledOn(aus, "q", 2*time.Second) }) {
		t.Fatalf("did not settle on the low layer under a 350 kbit/s limit: %s", summary(sv.snapshot()))
	}
	st = layerState(t, base, sessionID(v))
	if st["current"] != "q" || st["simulcast"] != true || st["pinned"] != "auto" {
		t.Fatalf("layer state under the limit: %v", st)
	}
	lim.mu.Lock()
	dropped := lim.dropped
	lim.mu.Unlock()
	t.Logf("limited: %s; %d packets dropped by the limiter; state %v", summary(sv.snapshot()), dropped, st)

	// Lifted: up to f.
	lifted := len(sv.snapshot())
	lim.set(0)
	if !sv.waitFor(30*time.Second, func(aus []auRecord) bool { return settledOn(aus[lifted:], "f", time.Second) }) {
		t.Fatalf("did not climb to the high layer once the limit was lifted: %s", summary(sv.snapshot()[lifted:]))
	}
	after := sv.snapshot()[lifted:]
	// Skip the access units still in flight from the limited phase.
	first := 0
	for first < len(after) && after[first].rid == "q" {
		first++
	}
	if n := checkSwitches(t, after[max(first-1, 0):]); n == 0 {
		t.Fatal("no switch seen after the limit was lifted")
	}
	t.Logf("lifted: %s; state %v", summary(after), layerState(t, base, sessionID(v)))
}

// summary lists the runs of layers of a viewer's access units.
func summary(aus []auRecord) string {
	var b strings.Builder
	for i := 0; i < len(aus); {
		j := i
		for j < len(aus) && aus[j].rid == aus[i].rid {
			j++
		}
		fmt.Fprintf(&b, "%s×%d ", aus[i].rid, j-i)
		i = j
	}
	return b.String()
}

// TestSimulcastPin: ?layer= on the WHEP URL pins a layer from the first
// frame; the API moves the pin (the publisher's PLI goes to that layer's
// SSRC) and reports it; bad names get 400.
func TestSimulcastPin(t *testing.T) {
	base := startServer(t, nil)
	pub, stop, fed := publishSimulcast(t, base)
	defer func() { stop(); <-fed; pub.Close() }()

	offer := rawOffer(t, false)
	for _, bad := range []string{"not%20a%20layer", "zz"} {
		r := send(t, nil, http.MethodPost, base+"/whep/sc?layer="+bad, map[string]string{"Content-Type": "application/sdp"}, offer)
		if r.status != http.StatusBadRequest || strings.Count(strings.TrimSpace(r.body), "\n") != 0 {
			t.Fatalf("?layer=%s: %d %q, want 400 with a one-line reason", bad, r.status, r.body)
		}
	}

	sv := &scViewer{start: map[uint32]int{}}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	v, err := client.View(ctx, base+"/whep/sc?layer=low", client.ViewOptions{
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}, CongestionFeedback: true, OnRTP: sv.onRTP,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	cctx, stopCollect := context.WithCancel(context.Background())
	collected := make(chan struct{})
	go func() { defer close(collected); sv.collect(cctx, v) }()
	defer func() { stopCollect(); <-collected }()

	if !sv.waitFor(10*time.Second, func(aus []auRecord) bool { return len(aus) >= 30 }) {
		t.Fatalf("pinned viewer got %d access units", len(sv.snapshot()))
	}
	aus := sv.snapshot()
	if !aus[0].idr {
		t.Fatal("first access unit is not an IDR")
	}
	for i, a := range aus {
		if a.rid != "q" {
			t.Fatalf("AU %d of a viewer pinned low is layer %q: %s", i, a.rid, summary(aus))
		}
	}
	id := sessionID(v)
	if st := layerState(t, base, id); st["pinned"] != "low" || st["current"] != "q" {
		t.Fatalf("layer state: %v", st)
	}

	// Pin f by its RID through the API.
	plis := pub.LayerKeyframeRequests(0) // f
	json := map[string]string{"Content-Type": "application/json"}
	r := send(t, nil, http.MethodPost, base+"/v1/sessions/"+id+"/layer", json, `{"layer": "f"}`)
	if r.status != http.StatusOK || !strings.Contains(r.body, `"pinned": "f"`) {
		t.Fatalf("POST layer f: %d %s", r.status, r.body)
	}
	n := len(sv.snapshot())
	if !sv.waitFor(10*time.Second, func(aus []auRecord) bool { return settledOn(aus[n:], "f", 500*time.Millisecond) }) {
		t.Fatalf("did not switch to f: %s", summary(sv.snapshot()[n:]))
	}
	if checkSwitches(t, sv.snapshot()) != 1 {
		t.Fatalf("want exactly one switch: %s", summary(sv.snapshot()))
	}
	if pub.LayerKeyframeRequests(0) <= plis {
		t.Fatal("the switch to f sent no keyframe request to f's SSRC")
	}
	if st := layerState(t, base, id); st["pinned"] != "f" || st["current"] != "f" {
		t.Fatalf("layer state after the pin: %v", st)
	}
	for _, c := range []struct{ body string }{{`{"layer": "zz"}`}, {`{"layer": 3}`}, {`{}`}, {`{"layer": "low", "x": 1}`}} {
		if r := send(t, nil, http.MethodPost, base+"/v1/sessions/"+id+"/layer", json, c.body); r.status != http.StatusBadRequest {
			t.Fatalf("POST %s: %d %s, want 400", c.body, r.status, r.body)
		}
	}
	if r := send(t, nil, http.MethodPost, base+"/v1/sessions/nope/layer", json, `{"layer": "low"}`); r.status != http.StatusNotFound {
		t.Fatalf("unknown session: %d", r.status)
	}
	if r := send(t, nil, http.MethodPost, base+"/v1/sessions/"+id+"/layer", nil, `{"layer": "auto"}`); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("without Content-Type: %d", r.status)
	}
}

// TestCongestedViewerKeyframesOnly: without simulcast, a viewer whose
// link cannot carry the stream goes keyframes-only (its receiver reports
// show the loss) instead of being sent everything; a viewer on a good
// link beside it gets every frame.
func TestCongestedViewerKeyframesOnly(t *testing.T) {
	clip := loadClip(t)
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/cong", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, clip, 0)
	f.pad = 5000 // about 1 Mbit/s
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	<-f.sentAU(1)

	lim := &limiter{}
	lim.set(300_000)
	slow := &scViewer{start: map[uint32]int{}}
	vs, err := client.View(ctx, base+"/whep/cong", client.ViewOptions{OnRTP: slow.onRTP,
		WrapConn: func(c net.PacketConn) net.PacketConn { return &limitedConn{c, lim} }})
	if err != nil {
		t.Fatal(err)
	}
	defer vs.Close()
	good, err := client.View(ctx, base+"/whep/cong", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	cctx, stopCollect := context.WithCancel(context.Background())
	collected := make(chan struct{})
	goodAUs := 0
	go func() {
		defer close(collected)
		for {
			select {
			case <-cctx.Done():
				return
			case <-good.AccessUnits():
				goodAUs++
			case <-good.OpusPackets():
			}
		}
	}()
	slowDone := make(chan struct{})
	go func() { defer close(slowDone); slow.collect(cctx, vs) }()
	defer func() { stopCollect(); <-collected; <-slowDone }()

	id := sessionID(vs)
	deadline := time.Now().Add(15 * time.Second)
	for layerState(t, base, id)["keyframes_only"] != true {
		if time.Now().After(deadline) {
			t.Fatalf("the congested viewer never went keyframes-only: %v", layerState(t, base, id))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st := layerState(t, base, sessionID(good)); st["keyframes_only"] != false {
		t.Fatalf("the viewer on a good link went keyframes-only: %v", st)
	}
	// While the server says keyframes-only, only IDRs arrive (after
	// 200 ms for frames in flight at either end). Watch for up to 4 s,
	// until an IDR came.
	detected := time.Now()
	lastKeyOnly := detected
	idrs := 0
	for time.Since(detected) < 4*time.Second && idrs == 0 {
		time.Sleep(100 * time.Millisecond)
		if layerState(t, base, id)["keyframes_only"] != true {
			break
		}
		lastKeyOnly = time.Now()
		for _, a := range slow.snapshot() {
			if a.at.After(detected.Add(200*time.Millisecond)) && a.at.Before(lastKeyOnly.Add(-200*time.Millisecond)) && a.idr {
				idrs++
			}
		}
	}
	var window []auRecord
	for _, a := range slow.snapshot() {
		if a.at.After(detected.Add(200*time.Millisecond)) && a.at.Before(lastKeyOnly.Add(-200*time.Millisecond)) {
			window = append(window, a)
			if !a.idr {
				t.Fatalf("a P frame reached the keyframes-only viewer: %d of %d AUs", len(window), len(slow.snapshot()))
			}
		}
	}
	if len(window) == 0 {
		t.Fatalf("the keyframes-only viewer got no keyframe in %v (the clip has one per second); stats %+v",
			lastKeyOnly.Sub(detected), vs.Stats())
	}
	if g := good.Stats(); g.VideoGaps != 0 {
		t.Fatalf("the viewer on a good link saw %d gaps", g.VideoGaps)
	}
	t.Logf("congested viewer got %d IDRs in %v, keyframes only; good viewer stats %+v", len(window), lastKeyOnly.Sub(detected), good.Stats())
}

// TestSimulcastTooManyLayers: an offer with four simulcast layers in one
// section is refused with 400 and a one-line reason.
func TestSimulcastTooManyLayers(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, base+"/whip/four", client.PublishOptions{Simulcast: []string{"a", "b", "c", "d"}})
	if err == nil {
		pub.Close()
		t.Fatal("four layers accepted")
	}
	if client.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "at most 3") {
		t.Fatalf("four layers: %v, want 400 saying at most 3", err)
	}
}
