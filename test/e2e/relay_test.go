package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// received is what one viewer got, collected after the feed ended.
type received struct {
	aus  [][][]byte
	opus [][]byte
}

// TestRelayH264Opus publishes the clip twice at real-time pace with Opus
// beside it, and checks that three viewers (two early, one late) get the
// access units and Opus packets unchanged and without gaps, each starting
// at a keyframe, and that the publisher's DELETE ends them.
func TestRelayH264Opus(t *testing.T) {
	// Registered first, so it runs after every other cleanup, the server's
	// Close included.
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })

	clip := loadClip(t)
	// No reconnect grace: the publisher's DELETE ends the viewers at once.
	base := startServer(t, func(c *config.Config) { c.Stream.ReconnectGrace, c.WebRTC.DetachPublishers = 0, true })
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()

	pub, err := client.Publish(ctx, base+"/whip/relay", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pubClosed := false
	defer func() {
		if !pubClosed {
			_ = pub.Close()
		}
	}()
	if pub.ETag() == "" {
		t.Error("WHIP answer without ETag")
	}

	f := newFeed(pub, clip, 2*len(clip))
	feedCtx, stopFeed := context.WithCancel(ctx)
	defer stopFeed()
	go f.run(feedCtx)
	defer func() { stopFeed(); <-f.done }()

	viewers := make([]*client.Viewer, 3)
	defer func() {
		for _, v := range viewers {
			if v != nil {
				_ = v.Close()
			}
		}
	}()
	join := func(i int) error {
		v, err := client.View(ctx, base+"/whep/relay", client.ViewOptions{})
		if err != nil {
			return fmt.Errorf("viewer %d: %w", i, err)
		}
		viewers[i] = v
		return nil
	}

	// Two viewers join as soon as the first access unit is out.
	select {
	case <-f.sentAU(1):
	case <-f.done:
		t.Fatal(f.result())
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		wg.Go(func() { errs[i] = join(i) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The third joins after 1.2 s (30 access units), past the second
	// keyframe (access unit 25).
	select {
	case <-f.sentAU(30):
	case <-f.done:
		t.Fatal(f.result())
	}
	if err := join(2); err != nil {
		t.Fatal(err)
	}
	// The relay runs on sluice's own SRTP writer (rtc.Direct), not pion's:
	// the checks below are of that path.
	if paths := waitRTPPaths(t, base, "", map[string]int{"direct": 3}); paths["direct"] != 3 {
		t.Errorf("viewer RTP paths = %v, want 3 direct", paths)
	}
	// So does the ingest: the publisher is detached from pion
	// (webrtc.detach_publishers), its SRTP read by sluice.
	if s := publisherSession(t, base, "direct"); s.RTPPath != "direct" || !s.Detached {
		t.Errorf("publisher session %+v, want detached on the direct path", s)
	}

	<-f.done
	sent, opusSent, err := f.result()
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	if len(sent) != 2*len(clip) {
		t.Fatalf("feed stopped after %d access units", len(sent))
	}

	for i, v := range viewers {
		name := fmt.Sprintf("viewer %d", i)
		r := collect(t, name, v, sent, opusSent)
		start := checkVideo(t, name, v, sent, r.aus)
		switch {
		case start < 0:
		case i < 2 && start > clipGOP:
			t.Errorf("%s joined at the first access unit but started at access unit %d", name, start)
		case i == 2 && (start < clipGOP || start > 2*clipGOP):
			t.Errorf("%s joined after 1.2 s and started at access unit %d, want the keyframe at 25 (or 50)", name, start)
		}
		checkOpus(t, name, r.opus, opusSent)
		t.Logf("%s: access units from %d (%d received), %d Opus packets", name, start, len(r.aus), len(r.opus))
		if st := v.Stats(); st.VideoGaps != 0 || st.DroppedAUs != 0 || st.DroppedOpus != 0 {
			t.Errorf("%s: %+v", name, st)
		}
	}

	// RFC 9725 §4.2: DELETE ends the publisher; the server then closes
	// the viewers' PeerConnections.
	pubClosed = true
	if err := pub.Close(); err != nil {
		t.Errorf("publisher DELETE: %v", err)
	}
	for i, v := range viewers {
		waitDone(t, fmt.Sprintf("viewer %d after publisher DELETE", i), v.Done(), 10*time.Second)
	}
	for i, v := range viewers {
		if err := v.Close(); err != nil && client.StatusOf(err) != http.StatusNotFound {
			t.Errorf("viewer %d Close: %v", i, err)
		}
	}
}

// collect reads a viewer's queues until the last access unit and the last
// Opus packet sent have arrived, or 10 s have passed.
func collect(t *testing.T, name string, v *client.Viewer, sent [][][]byte, opusSent int) received {
	t.Helper()
	var r received
	lastAU := sent[len(sent)-1]
	gotLastAU := false
	gotLastOpus := false
	deadline := time.After(10 * time.Second)
	for !gotLastAU || !gotLastOpus {
		select {
		case au := <-v.AccessUnits():
			r.aus = append(r.aus, au.NALUs)
			// The clip repeats: only the last access unit of the
			// second pass, at the expected position, counts as the end.
			if equalAU(au.NALUs, lastAU) {
				if s := matchStart(sent, r.aus); s >= 0 && s+len(r.aus) == len(sent) {
					gotLastAU = true
				}
			}
		case op := <-v.OpusPackets():
			r.opus = append(r.opus, op.Payload)
			if n, ok := client.OpusTestIndex(op.Payload); ok && int(n) == opusSent-1 {
				gotLastOpus = true
			}
		case <-deadline:
			t.Errorf("%s: after 10 s: last access unit received: %v, last Opus packet: %v (%d AUs, %d Opus packets so far)",
				name, gotLastAU, gotLastOpus, len(r.aus), len(r.opus))
			return r
		}
	}
	return r
}

// checkVideo checks that the viewer's access units are a run of the sent
// ones starting at a keyframe, and returns where the run starts (-1 if it
// is not one).
func checkVideo(t *testing.T, name string, v *client.Viewer, sent, got [][][]byte) int {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s: no access units", name)
		return -1
	}
	if !client.IsIDR(got[0]) {
		t.Errorf("%s: first access unit has no IDR slice (NAL types %v)", name, nalTypes(got[0]))
	}
	pktType, naluType, ok := v.FirstVideoNAL()
	switch {
	case !ok:
		t.Errorf("%s: no video packet recorded", name)
	case pktType == 7 || pktType == 5, pktType == 24 && naluType == 7, pktType == 28 && naluType == 5:
	default:
		t.Errorf("%s: first video RTP packet has NAL type %d (inner %d), want SPS, STAP-A with SPS, or IDR", name, pktType, naluType)
	}
	start := matchStart(sent, got)
	if start < 0 {
		// Say where it first goes wrong.
		s := matchStart(sent, got[:1])
		for k := range got {
			if s < 0 || s+k >= len(sent) || !equalAU(sent[s+k], got[k]) {
				t.Errorf("%s: %d access units received are not a run of those sent: first differs at received %d (sent start %d, NAL types %v)",
					name, len(got), k, s, nalTypes(got[k]))
				break
			}
		}
		return -1
	}
	if start+len(got) != len(sent) {
		t.Errorf("%s: received access units %d..%d of %d", name, start, start+len(got)-1, len(sent))
	}
	return start
}

// checkOpus checks that the payloads are OpusTestPacket(n) for consecutive
// n, ending with the last one sent.
func checkOpus(t *testing.T, name string, got [][]byte, sent int) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s: no Opus packets", name)
		return
	}
	first, ok := client.OpusTestIndex(got[0])
	if !ok {
		t.Errorf("%s: Opus payload %x changed", name, got[0])
		return
	}
	for k, p := range got {
		want := client.OpusTestPacket(first + uint16(k))
		if string(p) != string(want) {
			t.Errorf("%s: Opus packet %d is %x, want %x (no gaps, no changes)", name, k, p, want)
			return
		}
	}
	if int(first)+len(got) != sent {
		t.Errorf("%s: Opus packets %d..%d of %d", name, first, int(first)+len(got)-1, sent)
	}
}

func nalTypes(au [][]byte) []int {
	out := make([]int, len(au))
	for i, n := range au {
		out[i] = int(n[0] & 0x1f)
	}
	return out
}

// TestViewerAsDTLSServerUsesPion: sluice's own SRTP writer (rtc.Direct)
// needs sluice to be the DTLS server. A viewer whose offer insists on
// being the server itself (a=setup:passive) gets sluice as the DTLS client,
// and its RTP goes through pion's path: media still flows, and the API
// says which path it is.
func TestViewerAsDTLSServerUsesPion(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "passive", client.PublishOptions{})
	passive, err := client.View(ctx, base+"/whep/passive", client.ViewOptions{
		MungeOffer: func(sdp string) string { return strings.ReplaceAll(sdp, "a=setup:actpass", "a=setup:passive") },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer passive.Close()
	if got := receiveAUs(passive, 2*clipGOP, 15*time.Second); got < 2*clipGOP {
		t.Fatalf("viewer as DTLS server: %d access units in 15 s, want %d", got, 2*clipGOP)
	}
	if paths := waitRTPPaths(t, base, "", map[string]int{"pion": 1}); paths["pion"] != 1 || len(paths) != 1 {
		t.Errorf("viewer RTP paths = %v, want 1 pion", paths)
	}
	// A usual viewer next to it takes the direct path.
	usual, err := client.View(ctx, base+"/whep/passive", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer usual.Close()
	if got := receiveAUs(usual, clipGOP, 15*time.Second); got < clipGOP {
		t.Fatalf("usual viewer: %d access units in 15 s, want %d", got, clipGOP)
	}
	if paths := waitRTPPaths(t, base, "", map[string]int{"pion": 1, "direct": 1}); paths["pion"] != 1 || paths["direct"] != 1 {
		t.Errorf("viewer RTP paths = %v, want 1 pion and 1 direct", paths)
	}
}

// TestViewerOverICETCP: a viewer that can only do ICE over TCP (RFC 6544,
// against webrtc.tcp_enabled) plays the stream; its RTP goes through
// pion's path, since the direct path sends on the shared UDP socket only.
func TestViewerOverICETCP(t *testing.T) {
	base := startServer(t, func(c *config.Config) {
		c.WebRTC.TCPEnabled = true
		c.WebRTC.TCPPort = 0
	})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "tcp", client.PublishOptions{})
	v, err := client.View(ctx, base+"/whep/tcp", client.ViewOptions{ICETCP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 2*clipGOP, 15*time.Second); got < 2*clipGOP {
		t.Fatalf("ICE-TCP viewer: %d access units in 15 s, want %d", got, 2*clipGOP)
	}
	if paths := waitRTPPaths(t, base, "", map[string]int{"pion": 1}); paths["pion"] != 1 || len(paths) != 1 {
		t.Errorf("viewer RTP paths = %v, want 1 pion", paths)
	}
	if st := v.Stats(); st.VideoGaps != 0 {
		t.Errorf("ICE-TCP viewer: %+v", st)
	}
}

// TestViewerDetachesFromPion: connected viewers on the direct path are
// detached from pion (their PeerConnection closed, ICE consent, RTCP and
// DTLS close handled by sluice; these pion viewers send no receiver
// reports, so after the detach delay). Media goes on, keyframe requests
// still reach the publisher, the API says connected, an ICE restart is
// answered by sluice; a viewer that hangs
// up without DELETE is gone at once (its DTLS close_notify), and a kicked
// one learns it from sluice's close_notify.
func TestViewerDetachesFromPion(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, leakOptions...) })
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	pub, _ := startFeed(t, ctx, base, "detach", client.PublishOptions{})
	var viewers [2]*client.Viewer
	for i := range viewers {
		v, err := client.View(ctx, base+"/whep/detach", client.ViewOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		viewers[i] = v
	}
	a, b := viewers[0], viewers[1]
	deadline := time.Now().Add(15 * time.Second)
	var sessions []apiSession
	for {
		sessions = viewerSessions(t, base)
		detached := 0
		for _, s := range sessions {
			if s.Detached && s.State == "connected" && s.RTPPath == "direct" {
				detached++
			}
		}
		if detached == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("viewers not detached from pion (connected, direct) within 15 s: %+v", sessions)
		}
		time.Sleep(100 * time.Millisecond)
	}

	drain(a)
	if got := receiveAUs(a, 2*clipGOP, 15*time.Second); got < 2*clipGOP {
		t.Fatalf("after detaching: %d access units in 15 s, want %d", got, 2*clipGOP)
	}
	before := pub.KeyframeRequests()
	for i := 0; pub.KeyframeRequests() == before; i++ {
		if i == 30 {
			t.Fatal("a detached viewer's PLIs did not reach the publisher in 3 s")
		}
		if err := a.SendPLI(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// An ICE restart of a detached viewer is answered by sluice: media
	// goes on over the new ICE session.
	etag := a.ETag()
	if err := a.RestartICE(ctx); err != nil {
		t.Fatalf("ICE restart of a detached viewer: %v", err)
	}
	if a.ETag() == etag {
		t.Error("no new ETag after the ICE restart")
	}
	// Connected again only when sluice answered a check with the new
	// credentials (media alone would keep flowing to the old address).
	for i := 0; a.ICEConnectionState() != webrtc.ICEConnectionStateConnected; i++ {
		if i == 100 {
			t.Fatalf("ICE %s 5 s after the restart, want connected", a.ICEConnectionState())
		}
		time.Sleep(50 * time.Millisecond)
	}
	drain(a)
	if got := receiveAUs(a, 2*clipGOP, 15*time.Second); got < 2*clipGOP {
		t.Fatalf("after the ICE restart: %d access units in 15 s, want %d", got, 2*clipGOP)
	}
	select {
	case <-a.Done():
		t.Fatal("the viewer's connection ended after its ICE restart")
	default:
	}

	if err := b.Hangup(); err != nil {
		t.Fatal(err)
	}
	waitViewers(t, base, 1, 3*time.Second) // ConsentTimeout would take 15 s

	var id string
	for _, s := range viewerSessions(t, base) {
		id = s.ID
	}
	if code := kick(t, base, "", id); code != 200 {
		t.Fatalf("kick: %d", code)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the kicked detached viewer's connection is still up after 5 s: no close_notify from sluice")
	}
}

type apiSession struct {
	ID, Kind, State string
	RTPPath         string `json:"rtp_path"`
	Detached        bool
}

// viewerSessions is the WHEP sessions GET /v1/sessions lists.
func viewerSessions(t *testing.T, base string) []apiSession {
	t.Helper()
	var all struct{ Sessions []apiSession }
	if code := getJSON(t, base+"/v1/sessions", "", &all); code != 200 {
		t.Fatalf("GET /v1/sessions: %d", code)
	}
	var out []apiSession
	for _, s := range all.Sessions {
		if s.Kind == "whep" {
			out = append(out, s)
		}
	}
	return out
}

// waitViewers waits until the server lists n WHEP sessions.
func waitViewers(t *testing.T, base string, n int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for len(viewerSessions(t, base)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d viewer sessions after %s, want %d", len(viewerSessions(t, base)), d, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDetachViewersOff: with webrtc.detach_viewers false a viewer keeps
// its pion PeerConnection (RTP still on the direct path) and plays.
func TestDetachViewersOff(t *testing.T) {
	base := startServer(t, func(c *config.Config) { c.WebRTC.DetachViewers = false })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "attached", client.PublishOptions{})
	v, err := client.View(ctx, base+"/whep/attached", client.ViewOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if got := receiveAUs(v, 2*clipGOP, 15*time.Second); got < 2*clipGOP {
		t.Fatalf("%d access units in 15 s, want %d", got, 2*clipGOP)
	}
	s := viewerSessions(t, base)
	if len(s) != 1 || s[0].Detached || s[0].RTPPath != "direct" || s[0].State != "connected" {
		t.Errorf("viewer sessions %+v, want one connected on the direct path, not detached", s)
	}
}

// TestDetachedViewerMissedFinalFlight: the viewer loses sluice's last
// DTLS handshake flight (ChangeCipherSpec and Finished). sluice has
// detached it from pion 0.1 s after its own side of the handshake ended;
// when the viewer repeats its flight (after about a second), the shared
// socket's copy of pion's last flight is sent again, and the viewer
// connects and plays.
func TestDetachedViewerMissedFinalFlight(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	startFeed(t, ctx, base, "lostflight", client.PublishOptions{})
	var drop *dropFinalFlight
	v, err := client.View(ctx, base+"/whep/lostflight", client.ViewOptions{
		WrapConn: func(c net.PacketConn) net.PacketConn { drop = &dropFinalFlight{PacketConn: c}; return drop },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if drop.dropped.Load() != 1 {
		t.Fatalf("the wrapper dropped %d datagrams, want the final flight once", drop.dropped.Load())
	}
	if got := receiveAUs(v, clipGOP, 15*time.Second); got < clipGOP {
		t.Fatalf("%d access units in 15 s, want %d", got, clipGOP)
	}
	if s := viewerSessions(t, base); len(s) != 1 || !s[0].Detached {
		t.Errorf("viewer sessions %+v, want one detached", s)
	}
}

// dropFinalFlight drops the first datagram it reads that starts with a
// DTLS ChangeCipherSpec record: the server's final handshake flight.
type dropFinalFlight struct {
	net.PacketConn
	dropped atomic.Int32
}

func (c *dropFinalFlight) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err == nil && n > 0 && b[0] == 20 && c.dropped.CompareAndSwap(0, 1) {
			continue
		}
		return n, addr, err
	}
}
