package e2e

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// clipPath is a 3 s, 25 fps, constrained baseline clip with an IDR every 25
// frames; testdata/README.md says how it was made.
const clipPath = "../../testdata/h264_cbp_320x240_25fps_3s.h264"

// clipGOP is the clip's keyframe interval in access units.
const clipGOP = 25

// frameDuration is the clip's frame interval (25 fps).
const frameDuration = 40 * time.Millisecond

// leakOptions are the goroutine-leak checks' exceptions: gosrt's dialer
// (v0.11.1-0.20260812091715) can leave its socket reader blocked on an
// unbuffered channel send when a dial fails (its Close takes from the
// channel only if the send is already waiting), which the SRT tests' refused
// and rejected callers trigger. It is the library's, not sluice's.
var leakOptions = []goleak.Option{goleak.IgnoreTopFunction("github.com/datarhei/gosrt.DialWithContext.func1")}

func TestMain(m *testing.M) {
	// Every test closes its server and clients; nothing may outlive them.
	goleak.VerifyTestMain(m, leakOptions...)
}

// loadClip returns the clip's access units, AUDs dropped.
func loadClip(t testing.TB) [][][]byte {
	t.Helper()
	aus, err := client.ReadAccessUnitsFile(clipPath)
	if err != nil {
		t.Fatal(err)
	}
	return aus
}

// startServer runs a server on loopback with OS-picked ports and returns its
// base URL. tweak, if not nil, changes the configuration first. The server is
// closed when the test ends, in under 5 s.
func startServer(t testing.TB, tweak func(*config.Config)) string {
	t.Helper()
	return startNode(t, tweak, nodeOptions{closeWithin: 5 * time.Second}).base
}

// testLogWriter sends the server's log to t.Log until stop, so that a
// goroutine logging late cannot make the testing package panic.
type testLogWriter struct {
	t       testing.TB
	mu      sync.Mutex
	stopped bool
}

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testLogWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// feed sends a clip in a loop at real-time pace: one access unit every
// 40 ms and one Opus packet (client.OpusTestPacket(n)) every 20 ms.
type feed struct {
	pub   *client.Publisher
	clip  [][][]byte
	total int // access units to send; 0 = until ctx ends
	pad   int // if > 0, each access unit is padded with an SEI to about pad bytes

	mu    sync.Mutex
	sent  [][][]byte // access units sent, in order
	opus  int        // Opus packets sent
	marks map[int]chan struct{}
	done  chan struct{}
	err   error
}

func newFeed(pub *client.Publisher, clip [][][]byte, total int) *feed {
	return &feed{pub: pub, clip: clip, total: total, marks: map[int]chan struct{}{}, done: make(chan struct{})}
}

// sentAU returns a channel closed once n access units have been sent.
func (f *feed) sentAU(n int) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) >= n {
		c := make(chan struct{})
		close(c)
		return c
	}
	c, ok := f.marks[n]
	if !ok {
		c = make(chan struct{})
		f.marks[n] = c
	}
	return c
}

// result returns what was sent; call it after done is closed.
func (f *feed) result() (aus [][][]byte, opus int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent, f.opus, f.err
}

func (f *feed) run(ctx context.Context) {
	defer close(f.done)
	start := time.Now()
	for i := 0; ; i++ {
		pts := time.Duration(i) * client.OpusFrameDuration
		if err := f.pub.WriteOpus(client.OpusTestPacket(uint16(i)), pts); err != nil {
			f.fail(err)
			return
		}
		f.mu.Lock()
		f.opus++
		f.mu.Unlock()
		if i%2 == 0 {
			n := i / 2
			au := f.clip[n%len(f.clip)]
			if f.pad > 0 {
				au = padAU(au, f.pad)
			}
			if err := f.pub.WriteH264(au, pts); err != nil {
				f.fail(err)
				return
			}
			f.mu.Lock()
			f.sent = append(f.sent, au)
			if c, ok := f.marks[len(f.sent)]; ok {
				close(c)
				delete(f.marks, len(f.sent))
			}
			last := f.total > 0 && len(f.sent) == f.total
			f.mu.Unlock()
			if last {
				return
			}
		}
		// Pace against the start time so that slow writes do not add up.
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Until(start.Add(time.Duration(i+1) * client.OpusFrameDuration))):
		}
	}
}

func (f *feed) fail(err error) {
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// padAU inserts an SEI before the first slice so that the access unit is
// about size bytes.
func padAU(au [][]byte, size int) [][]byte {
	n := 0
	for _, nalu := range au {
		n += len(nalu)
	}
	if size-n < 24 {
		return au
	}
	sei, err := client.PaddingSEI(size - n)
	if err != nil {
		return au
	}
	i := slices.IndexFunc(au, func(nalu []byte) bool { t := nalu[0] & 0x1f; return t == 1 || t == 5 })
	if i < 0 {
		i = len(au)
	}
	out := slices.Clone(au[:i])
	out = append(out, sei)
	return append(out, au[i:]...)
}

// matchStart returns the smallest i such that got is sent[i:i+len(got)]
// exactly, or -1.
func matchStart(sent, got [][][]byte) int {
	if len(got) == 0 {
		return -1
	}
	for i := 0; i+len(got) <= len(sent); i++ {
		ok := true
		for k := range got {
			if !equalAU(sent[i+k], got[k]) {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

func equalAU(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }

// rawOffer returns an SDP offer from a pion PeerConnection that is closed
// again: for requests that must not start a real session. Sendonly H264
// and Opus for WHIP, recvonly for WHEP.
func rawOffer(t testing.TB, sendonly bool) string {
	t.Helper()
	pc, gathered, err := newRawPeer(sendonly)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

// newRawPeer makes a pion PeerConnection on loopback with a local offer set;
// gathered is closed when ICE gathering is complete.
func newRawPeer(sendonly bool) (*webrtc.PeerConnection, <-chan struct{}, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, nil, err
	}
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*webrtc.PeerConnection, <-chan struct{}, error) {
		_ = pc.Close()
		return nil, nil, err
	}
	if sendonly {
		caps := []webrtc.RTPCodecCapability{
			{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: client.DefaultH264Fmtp},
			{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2},
		}
		for i, c := range caps {
			tr, err := webrtc.NewTrackLocalStaticRTP(c, []string{"video", "audio"}[i], "raw")
			if err != nil {
				return fail(err)
			}
			if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				return fail(err)
			}
		}
	} else {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				return fail(err)
			}
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
	return pc, gathered, nil
}

// do sends one request without keep-alive and returns the status, headers
// and body.
func do(t testing.TB, method, url, contentType string, body io.Reader) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	hc := &http.Client{
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// waitDone waits for a session's Done channel.
func waitDone(t testing.TB, what string, done <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("%s: connection not ended within %v", what, d)
	}
}
