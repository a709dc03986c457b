package e2e

import (
	"crypto/rand"
	"strings"
	"testing"
	"time"

	gosrt "github.com/datarhei/gosrt"

	"github.com/sluice-media/sluice/internal/config"
)

// dialSRT connects to the server as an SRT caller with that stream id; the
// connection is closed at the test's end.
func dialSRT(t *testing.T, srv *node, streamID string) (gosrt.Conn, error) {
	t.Helper()
	conf := gosrt.DefaultConfig()
	conf.StreamId = streamID
	conf.PayloadSize = 7 * 188
	conf.ConnectionTimeout = 3 * time.Second
	c, err := gosrt.Dial("srt", srv.SRTAddr().String(), conf)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, nil
}

// srtClosedWithin reports whether the server ends c within d: a caller
// that only sends learns it from a write that fails, or from a read (the
// server sends nothing) that returns.
func srtClosedWithin(c gosrt.Conn, d time.Duration, send func() error) bool {
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		var b [1500]byte
		for {
			if _, err := c.Read(b[:]); err != nil {
				return
			}
		}
	}()
	deadline := time.After(d)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			return true
		case <-deadline:
			_ = c.Close()
			<-closed
			return false
		case <-tick.C:
			if send != nil && send() != nil {
				_ = c.Close()
				<-closed
				return true
			}
		}
	}
}

// TestSRTBadTS: a publisher that sends garbage shaped like MPEG-TS
// (0x47 every 188 bytes, random otherwise), without end, is dropped within
// srt.handshake_timeout and publishes nothing; one that stalls after the
// handshake is dropped as well; a good publisher on the same server goes
// on.
func TestSRTBadTS(t *testing.T) {
	needTool(t, "ffmpeg")
	srv := startEdgeServer(t, func(c *config.Config) { c.SRT.HandshakeTimeout = time.Second })
	ffmpegPublish(t, 60, "mpegts", srtURL(srv, "publish:good", "&pkt_size=1316"))
	st := waitStream(t, srv.Hub(), "good", 10*time.Second)

	junk, err := dialSRT(t, srv, "publish:junk")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7*188)
	start := time.Now()
	if !srtClosedWithin(junk, 5*time.Second, func() error {
		_, _ = rand.Read(buf)
		for i := 0; i < len(buf); i += 188 {
			buf[i] = 0x47
		}
		_, err := junk.Write(buf)
		return err
	}) {
		t.Error("garbage TS: connection still open after 5 s")
	} else if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("garbage TS dropped after %v, before the 1 s timeout", d)
	}

	stalled, err := dialSRT(t, srv, "publish:stalled")
	if err != nil {
		t.Fatal(err)
	}
	if !srtClosedWithin(stalled, 5*time.Second, nil) {
		t.Error("stalled publisher: connection still open after 5 s")
	}
	for _, name := range []string{"junk", "stalled"} {
		if _, err := srv.Hub().Lookup(name); err == nil {
			t.Errorf("stream %s published", name)
		}
	}
	if now, err := srv.Hub().Lookup("good"); err != nil || now != st {
		t.Fatalf("the good stream was disturbed: %v", err)
	}
}

// TestSRTPerIPLimit: limits.max_sessions_per_ip bounds SRT callers from
// one address; a refused caller is told (a rejected handshake), and a
// place freed is taken again.
func TestSRTPerIPLimit(t *testing.T) {
	srv := startEdgeServer(t, func(c *config.Config) {
		c.Limits.MaxSessionsPerIP = 2
		c.SRT.HandshakeTimeout = 10 * time.Second
	})
	a, err := dialSRT(t, srv, "publish:ip1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialSRT(t, srv, "publish:ip2"); err != nil {
		t.Fatal(err)
	}
	_, err = dialSRT(t, srv, "publish:ip3")
	if err == nil {
		t.Fatal("a third SRT caller from 127.0.0.1 was accepted with max_sessions_per_ip 2")
	}
	if !strings.Contains(err.Error(), "rejected") {
		t.Errorf("third caller: %v, want a rejected handshake", err)
	}
	_ = a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := dialSRT(t, srv, "publish:ip4"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no place after a caller left: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
