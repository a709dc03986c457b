package e2e

import (
	"bufio"
	"context"
	"io"
	"math/rand/v2"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/client"
)

// rtspSessionID is the session id in a SETUP response.
var rtspSessionID = regexp.MustCompile(`(?m)^Session: ([^;\r\n]+)`)

// rtspExchange writes req on conn and reads one response's header.
func rtspExchange(t *testing.T, conn net.Conn, r *bufio.Reader, req string) string {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatalf("%q: %v", strings.SplitN(req, "\r\n", 2)[0], err)
	}
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			t.Fatalf("%q: %v after %q", strings.SplitN(req, "\r\n", 2)[0], err, b.String())
		}
		if line == "\r\n" {
			break
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return b.String()
}

// TestRTSPGarbageWhileServing: while a WHIP publisher feeds a stream that
// a WHEP viewer and a gortsplib RTSP reader play, the RTSP port gets
// garbage, an endless header line, a bogus interleaved frame, silent and
// half-sent connections, and a reader that plays and then never reads.
// The viewer and the reader keep receiving, the garbage connections are
// closed by the server, and a new RTSP reader and a new WHEP viewer join
// while the half-open connections are still held.
func TestRTSPGarbageWhileServing(t *testing.T) {
	srv := startRTSPServer(t, false)
	clip := loadClip(t)
	ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/g", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, clip, 0)
	go f.run(ctx)
	defer func() { cancel(); <-f.done }()
	<-f.sentAU(5)

	v, err := client.View(ctx, srv.base+"/whep/g", client.ViewOptions{CountOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	reader := readRTSP(t, srv.rtsp, "g")
	reader.waitCounts(t, 10, 20, 10*time.Second)

	dial := func() net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", srv.rtsp, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Half-open: silent, a request cut short, a frame cut short; held
	// until the test ends (the server's read timeout, 10 s, ends them).
	var held []net.Conn
	for i := range 6 {
		c := dial()
		switch i % 3 {
		case 1:
			_, _ = c.Write([]byte("DESCRIBE rtsp://" + srv.rtsp + "/g RTSP/1.0\r\nCSeq: 1\r\nUser-Agen"))
		case 2: // an interleaved frame cut short
			_, _ = c.Write(append([]byte{'$', 0, 0xff, 0xff}, make([]byte, 1000)...))
		}
		held = append(held, c)
	}
	// A reader that sets up and plays over TCP, and never reads again.
	{
		c := dial()
		br := bufio.NewReader(c)
		res := rtspExchange(t, c, br, "SETUP rtsp://"+srv.rtsp+"/g/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n")
		m := rtspSessionID.FindStringSubmatch(res)
		if !strings.HasPrefix(res, "RTSP/1.0 200") || m == nil {
			t.Fatalf("raw SETUP: %q", res)
		}
		if _, err := c.Write([]byte("PLAY rtsp://" + srv.rtsp + "/g RTSP/1.0\r\nCSeq: 2\r\nSession: " + m[1] + "\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// Garbage: the server must close these connections.
	// gortsplib skips bytes that start nothing it knows, and a '$' starts
	// a frame of the next two bytes' length: a fixed seed keeps the frame
	// that the junk happens to start inside the junk.
	junk := make([]byte, 64<<10)
	rnd := rand.New(rand.NewPCG(22, 8554))
	for i := range junk {
		junk[i] = byte(rnd.UintN(256))
	}
	endless := "DESCRIBE rtsp://" + srv.rtsp + "/g RTSP/1.0\r\nCSeq: 1\r\nX-Long: " + strings.Repeat("a", 1<<20)
	inputs := map[string][]byte{
		"random bytes":        junk,
		"http request":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"endless header":      []byte(endless),
		"interleaved frame":   append(append([]byte{'$', 0, 0x04, 0x00}, junk[:1024]...), "\x00\xffnot rtsp\r\n\r\n"...),
		"huge body":           []byte("ANNOUNCE rtsp://" + srv.rtsp + "/x RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: 999999999\r\n\r\nv=0\r\n"),
		"binary request line": append([]byte("DESCRIBE \x00\x01\x02 RTSP/1.0\r\nCSeq: 1\r\n\r\n"), junk[:64]...),
	}
	closed := make(chan string, len(inputs))
	for name, in := range inputs {
		c := dial()
		go func() {
			_ = c.SetDeadline(time.Now().Add(8 * time.Second))
			_, _ = c.Write(in)
			// Whatever the server answers, it must then hang up.
			_, err := io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				closed <- name + ": still open after 8 s"
				return
			}
			closed <- ""
		}()
	}
	for range inputs {
		select {
		case msg := <-closed:
			if msg != "" {
				t.Error(msg)
			}
		case <-ctx.Done():
			t.Fatal("garbage connections not done in time")
		}
	}

	// The sessions that were there keep receiving.
	a0, o0 := reader.counts()
	before := v.Stats()
	reader.waitCounts(t, a0+25, o0+50, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for v.Stats().VideoPackets < before.VideoPackets+25 {
		if time.Now().After(deadline) {
			t.Fatalf("WHEP viewer: %d video packets after the garbage, %d before", v.Stats().VideoPackets, before.VideoPackets)
		}
		time.Sleep(20 * time.Millisecond) // the viewer has no event for counts
	}

	// New sessions join while the half-open connections are held.
	r2 := readRTSP(t, srv.rtsp, "g")
	r2.waitCounts(t, 10, 20, 10*time.Second)
	v2, err := client.View(ctx, srv.base+"/whep/g", client.ViewOptions{NoAudio: true})
	if err != nil {
		t.Fatalf("new viewer: %v", err)
	}
	defer v2.Close()
	if n := receiveAUs(v2, 10, 10*time.Second); n < 10 {
		t.Fatalf("new viewer got %d access units", n)
	}
	if _, _, err := f.result(); err != nil {
		t.Fatalf("publisher: %v", err)
	}
	for _, c := range held {
		c.Close()
	}
}
