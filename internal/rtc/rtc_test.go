package rtc

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// offerFromPion returns a real publisher offer (H264 + Opus, sendonly).
func offerFromPion(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return o.SDP
}

func newEngine(t *testing.T, mod func(*Config)) *Engine {
	t.Helper()
	cfg := Config{UDPPort: 0, TCPPort: 8189, ListenIPs: []string{"127.0.0.1"}}
	mod(&cfg)
	e, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func answerFor(t *testing.T, e *Engine) string {
	t.Helper()
	pc, err := e.NewPublisherPC(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if err := SetOffer(pc, offerFromPion(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := Answer(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func candidates(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\n") {
		if strings.HasPrefix(l, "a=candidate:") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func TestAnswerAnnouncesOneUDPPort(t *testing.T) {
	e := newEngine(t, func(*Config) {})
	port := e.UDPAddrs()[0].String()
	_, port, _ = strings.Cut(port, ":")
	for range 3 { // every session shares the port
		c := candidates(answerFor(t, e))
		if len(c) == 0 {
			t.Fatal("answer has no candidates")
		}
		for _, l := range c { // pion lists component 1 and 2 of the one address
			if !strings.Contains(l, " udp ") || !strings.Contains(l, " 127.0.0.1 "+port+" typ host") {
				t.Fatalf("candidates = %q, want only host candidates on 127.0.0.1:%s", c, port)
			}
		}
	}
}

func TestNAT1To1AndTCP(t *testing.T) {
	e := newEngine(t, func(c *Config) {
		c.NAT1To1IPs = []string{"203.0.113.10"}
		c.TCPEnabled = true
		c.TCPPort = 0
	})
	c := candidates(answerFor(t, e))
	var udp, tcp bool
	for _, l := range c {
		if strings.Contains(l, "127.0.0.1") {
			t.Errorf("local address announced despite nat_1to1_ips: %s", l)
		}
		udp = udp || strings.Contains(l, " udp ") && strings.Contains(l, "203.0.113.10")
		tcp = tcp || strings.Contains(l, " tcp ") && strings.Contains(l, "203.0.113.10") && strings.Contains(l, "tcptype passive")
	}
	if !udp || !tcp {
		t.Fatalf("candidates = %q, want UDP and passive TCP host candidates on 203.0.113.10", c)
	}
}

func TestParseOfferErrors(t *testing.T) {
	for _, body := range []string{"", "   ", "v=0", "hello", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"} {
		if _, err := ParseOffer(body); err == nil {
			t.Errorf("ParseOffer(%q) accepted", body)
		}
	}
	if _, err := ParseOffer(offerFromPion(t)); err != nil {
		t.Fatalf("real offer rejected: %v", err)
	}
}

func TestParseFragment(t *testing.T) {
	f, err := ParseFragment("a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "abcd" || len(f.Candidates) != 1 || *f.Candidates[0].SDPMid != "0" || !f.End {
		t.Fatalf("parsed %+v", f)
	}
	for _, bad := range []string{"a=ice-ufrag:x\r\n", "garbage line\r\n", strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 1 typ host\r\n", maxCandidates+1)} {
		if _, err := ParseFragment(bad); err == nil {
			t.Errorf("ParseFragment(%.30q) accepted", bad)
		}
	}
}

// TestSharedLoggers: one logger per scope for every PeerConnection, and
// pion's error lines still reach slog.
func TestSharedLoggers(t *testing.T) {
	var out strings.Builder
	f := newSharedLoggers(slog.New(slog.NewTextHandler(&out, nil)))
	a, b := f.NewLogger("ice"), f.NewLogger("ice")
	if a != b {
		t.Error("two loggers for one scope")
	}
	if f.NewLogger("dtls") == a {
		t.Error("one logger for two scopes")
	}
	a.Debug("not shown")
	a.Error("boom")
	if s := out.String(); !strings.Contains(s, "boom") || strings.Contains(s, "not shown") {
		t.Errorf("slog got %q", s)
	}
}
