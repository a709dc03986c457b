package e2e

import (
	"context"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// authSpy is a TCP proxy to an RTSP server that keeps the Authorization
// headers the clients send, to tell which scheme they answered with.
type authSpy struct {
	ln   net.Listener
	to   string
	wg   sync.WaitGroup
	mu   sync.Mutex
	seen []string // "Basic" or "Digest", in order
}

func startAuthSpy(t *testing.T, to string) *authSpy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &authSpy{ln: ln, to: to}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *authSpy) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", s.to, 2*time.Second)
		if err != nil {
			_ = c.Close()
			continue
		}
		s.wg.Add(2)
		go func() { // client → server, watched
			defer s.wg.Done()
			defer up.Close()
			buf := make([]byte, 32<<10)
			for {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				n, err := c.Read(buf)
				for _, l := range strings.Split(string(buf[:n]), "\r\n") {
					if v, ok := strings.CutPrefix(l, "Authorization: "); ok {
						scheme, _, _ := strings.Cut(v, " ")
						s.mu.Lock()
						s.seen = append(s.seen, scheme)
						s.mu.Unlock()
					}
				}
				if _, werr := up.Write(buf[:n]); werr != nil || err != nil {
					return
				}
			}
		}()
		go func() { // server → client
			defer s.wg.Done()
			defer c.Close()
			_, _ = io.Copy(c, up)
		}()
	}
}

func (s *authSpy) schemes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seen...)
}

// TestRTSPDigestAuth: with a static read token, the RTSP challenge offers
// Digest and ffprobe (and gortsplib's client) answer with Digest, the
// token as the password: they read the stream; a wrong token is refused.
func TestRTSPDigestAuth(t *testing.T) {
	needFFmpeg(t)
	const token = "digest-read-token-123"
	n := startNode(t, func(c *config.Config) {
		c.Stream.WaitForPublisher = 10 * time.Second
		c.Auth = auth.Config{Default: auth.ModeDeny, Rules: []auth.RuleConfig{
			{Actions: []string{"publish"}, Mode: auth.ModeAllow},
			{Actions: []string{"read"}, Mode: auth.ModeStatic, Tokens: []auth.StaticToken{{Token: token}}},
		}}
	}, nodeOptions{})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, n.base+"/whip/cam", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	go f.run(ctx)
	defer func() { cancel(); <-f.done }()
	<-f.sentAU(30)

	spy := startAuthSpy(t, n.RTSPAddr().String())
	addr := spy.ln.Addr().String()
	probe := func(pass string) (string, error) {
		out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-rtsp_transport", "tcp",
			"-show_entries", "stream=codec_name", "-of", "csv=p=0", "rtsp://viewer:"+pass+"@"+addr+"/cam").CombinedOutput()
		return string(out), err
	}
	out, err := probe(token)
	if err != nil || !strings.Contains(out, "h264") {
		t.Fatalf("ffprobe with the token: %v: %s", err, out)
	}
	if got := spy.schemes(); len(got) == 0 || strings.Contains(strings.Join(got, " "), "Basic") {
		t.Errorf("ffprobe answered with %v, want Digest only", got)
	}
	if out, err := probe("not-the-token"); err == nil {
		t.Errorf("ffprobe with a wrong token read the stream: %s", out)
	}

	before := len(spy.schemes())
	u, err := base.ParseURL("rtsp://viewer:" + token + "@" + addr + "/cam")
	if err != nil {
		t.Fatal(err)
	}
	c := gortsplib.Client{Scheme: u.Scheme, Host: u.Host}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Describe(u)
	c.Close()
	if err != nil {
		t.Fatalf("gortsplib DESCRIBE with the token: %v", err)
	}
	if got := spy.schemes()[before:]; len(got) == 0 || got[0] != "Digest" {
		t.Errorf("gortsplib answered with %v, want Digest", got)
	}
}
