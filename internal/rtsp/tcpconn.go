package rtsp

import (
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"
)

// conn is a TCP (or TLS) connection of the RTSP server whose writes are
// serialized, so that two writers can share it: gortsplib writes its
// responses (and any RTCP) through Write, and a TCP reader writes its
// batches of interleaved frames with writeBatch, one system call for a
// whole video frame instead of gortsplib's one per packet.
type conn struct {
	net.Conn
	mu sync.Mutex

	// Set by the connection's goroutine (OnRequest/OnResponse), which
	// gortsplib runs one request at a time.
	method base.Method

	// playing is closed once the PLAY response is on the wire: a reader's
	// frames must follow it, not overtake it.
	playing  chan struct{}
	armed    bool // the next Write is the PLAY response; mu guards it
	released bool // playing is closed; mu guards it

	// Until its first request a connection has firstRequest from its
	// accept to send it, not gortsplib's idle timeout (a minute; none at
	// all while gortsplib looks for an HTTP or WebSocket tunnel): a client
	// that connects and says nothing, or stops mid-request, is gone at the
	// read timeout. gortsplib sets a read deadline before each request it
	// reads, so its second one means the first request has come (on this
	// connection, or through a tunnel over it).
	deadlines    atomic.Int32
	firstRequest time.Time
}

// SetReadDeadline is gortsplib's deadline, bounded by firstRequest until
// the first request has come.
func (c *conn) SetReadDeadline(t time.Time) error {
	if c.deadlines.Add(1) <= 1 && (t.IsZero() || t.After(c.firstRequest)) {
		t = c.firstRequest
	}
	return c.Conn.SetReadDeadline(t)
}

// Write writes one of gortsplib's messages whole.
func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, err := c.Conn.Write(b)
	if c.armed {
		c.armed = false
		if err == nil && !c.released {
			c.released = true
			close(c.playing)
		}
	}
	return n, err
}

// writeBatch writes b (whole interleaved frames) within timeout.
func (c *conn) writeBatch(b []byte, timeout time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := c.Conn.Write(b)
	return err
}

// armPlay makes the next Write, the PLAY response, release playing.
func (c *conn) armPlay() {
	c.mu.Lock()
	c.armed = true
	c.mu.Unlock()
}

// listener wraps each accepted connection in a conn.
type listener struct {
	net.Listener
	readTimeout time.Duration
}

func (l listener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &conn{Conn: nc, playing: make(chan struct{}), firstRequest: time.Now().Add(l.readTimeout)}
	if err := nc.SetReadDeadline(c.firstRequest); err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// listen is gortsplib.Server.Listen.
func (s *Server) listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return listener{l, s.cfg.ReadTimeout}, nil
}

// listenTLS is gortsplib.Server.TLSListen: the conn is above TLS, so the
// direct path's batches are encrypted like gortsplib's writes (and the
// TLS handshake, done at the first read, is bounded by the first
// request's deadline).
func (s *Server) listenTLS(network, addr string, cfg *tls.Config) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return listener{tls.NewListener(l, cfg), s.cfg.ReadTimeout}, nil
}

// connOf is sc's conn, nil for a tunnel (HTTP or WebSocket: its bytes on
// the connection are not RTSP's).
func connOf(sc *gortsplib.ServerConn) *conn {
	if sc == nil || sc.Transport().Tunnel != gortsplib.TunnelNone {
		return nil
	}
	c, _ := sc.NetConn().(*conn)
	return c
}

// interleaved is where a TCP session's SETUP put one media: the RTP
// channel (RTCP is the next) and the SSRC gortsplib announced.
type interleaved struct {
	channel int
	ssrc    uint32
}

// OnRequest notes the method whose response OnResponse will see
// (gortsplib.ServerHandlerOnRequest).
func (h *handler) OnRequest(sc *gortsplib.ServerConn, req *base.Request) {
	if c := connOf(sc); c != nil {
		c.method = req.Method
	}
}

// noteResponse keeps what a TCP reader needs to write past gortsplib: a
// SETUP's interleaved channel and SSRC (from the Transport header
// gortsplib answers with; the set-up media is the session's newest), and
// the moment the PLAY response is written.
func (h *handler) noteResponse(sc *gortsplib.ServerConn, res *base.Response) {
	c := connOf(sc)
	if c == nil || res.StatusCode != base.StatusOK {
		return
	}
	switch c.method {
	case base.Play:
		c.armPlay()
	case base.Setup:
		ss := sc.Session()
		if ss == nil {
			return
		}
		sess, ok := ss.UserData().(*session)
		if !ok {
			return
		}
		var th headers.Transport
		if th.Unmarshal(res.Header["Transport"]) != nil || th.InterleavedIDs == nil || th.SSRC == nil {
			return
		}
		medias := ss.Medias()
		if len(medias) == 0 {
			return
		}
		if sess.tcp == nil {
			sess.tcp = make(map[*description.Media]interleaved)
		}
		sess.tcp[medias[len(medias)-1]] = interleaved{channel: th.InterleavedIDs[0], ssrc: *th.SSRC}
	}
}
