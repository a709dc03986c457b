package rtsp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/headers"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/hub"
)

// handler answers one gortsplib.Server's requests (plain or RTSPS): the
// callbacks of gortsplib's ServerHandler interfaces. gortsplib calls the
// session callbacks from the session's own goroutine, DESCRIBE from the
// connection's.
type handler struct {
	s   *Server
	srv *gortsplib.Server
}

// session is sluice's state of one RTSP session, kept in the
// ServerSession's user data.
type session struct {
	ip       netip.Addr
	remote   string
	reserved bool // holds a slot of the session limits
	name     string

	// A reader: its own ServerStream (so its own SSRCs) and cursor.
	st     *hub.Stream
	play   *described
	cursor *hub.Cursor
	reader *reader
	// A TCP reader's interleaved channel and SSRC by media, from the
	// SETUP responses (noteResponse).
	tcp map[*description.Media]interleaved

	// A publisher.
	pub *publication
}

// described is a session description made for one client: at DESCRIBE
// (kept for the SETUP that follows on the same connection, so that the
// SRTP keys of RTSPS match) or at SETUP.
type described struct {
	name   string
	st     *hub.Stream
	desc   *description.Session
	take   []int // hub track of each media
	stream *gortsplib.ServerStream
}

// OnConnClose forgets what the connection described.
func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.s.mu.Lock()
	delete(h.s.describes, ctx.Conn)
	h.s.mu.Unlock()
	if ctx.Error != nil && !isClosed(ctx.Error) {
		h.s.log.Debug("rtsp connection closed", "remote", remoteOf(ctx.Conn), "err", ctx.Error)
	}
}

// OnSessionOpen makes the session's state.
func (h *handler) OnSessionOpen(ctx *gortsplib.ServerHandlerOnSessionOpenCtx) {
	remote := remoteOf(ctx.Conn)
	ctx.Session.SetUserData(&session{ip: ipOf(remote), remote: remote})
}

// OnSessionClose releases what the session held: its cursor, its claim
// on a published stream (which then waits the reconnect grace for the
// publisher), its slot.
func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	sess, ok := ctx.Session.UserData().(*session)
	if !ok {
		return
	}
	switch {
	case sess.reader != nil:
		sess.reader.close()
	case sess.cursor != nil:
		sess.cursor.Close()
	}
	if sess.play != nil {
		sess.play.stream.Close()
	}
	if sess.pub != nil {
		sess.pub.close()
	}
	if sess.reserved {
		h.s.release(sess.ip)
	}
	if sess.reader == nil && sess.pub == nil {
		return // never played nor published: nothing a person cares about
	}
	kind := "reader"
	if sess.pub != nil {
		kind = "publisher"
	}
	log := h.s.log.With("stream", sess.name, "remote", sess.remote, "kind", kind)
	if ctx.Error != nil && !isClosed(ctx.Error) {
		log.Info("rtsp session closed", "err", ctx.Error)
	} else {
		log.Info("rtsp session closed")
	}
}

// OnDescribe describes the hub stream of the path: the tracks RTSP can
// carry, each its own media.
func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	name, err := h.check(ctx.Conn, ctx.Request, ctx.Path, ctx.Query, auth.ActionRead)
	if err != nil {
		res, err := h.fail(ctx.Conn, "DESCRIBE", name, err)
		return res, nil, err
	}
	d, err := h.describe(name)
	if err != nil {
		res, err := h.fail(ctx.Conn, "DESCRIBE", name, err)
		return res, nil, err
	}
	h.s.mu.Lock()
	h.s.describes[ctx.Conn] = d
	h.s.mu.Unlock()
	return &base.Response{StatusCode: base.StatusOK}, d.stream, nil
}

// OnAnnounce claims the stream for a publisher.
func (h *handler) OnAnnounce(ctx *gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	sess := ctx.Session.UserData().(*session)
	name, err := h.check(ctx.Conn, ctx.Request, ctx.Path, ctx.Query, auth.ActionPublish)
	if err == nil && sess.pub != nil {
		err = fmt.Errorf("%w: this session already announced %q", errPathChanged, sess.name)
	}
	if err == nil && !sess.reserved {
		if err = h.s.reserve(sess.ip); err == nil {
			sess.reserved = true
		}
	}
	var tracks []*pubTrack
	if err == nil {
		tracks, err = accepted(ctx.Description)
	}
	if err == nil {
		sess.pub, err = publish(h.s.deps.Hub, name, tracks, ctx.Session, h.s.deps.Ingest, protocolOf(ctx.Conn), sess.remote)
	}
	if err != nil {
		return h.fail(ctx.Conn, "ANNOUNCE", name, err)
	}
	sess.name = name
	h.s.log.Info("rtsp publisher announced", "stream", name, "remote", sess.remote, "tracks", len(tracks))
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSetup accepts a publisher's transport, or gives a reader its own
// ServerStream of the stream and a cursor in its ring.
func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	sess := ctx.Session.UserData().(*session)
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusOK}, nil, nil
	}
	if sess.play != nil {
		if name := strings.Trim(ctx.Path, "/"); name != sess.name {
			res, err := h.fail(ctx.Conn, "SETUP", name, fmt.Errorf("%w (%q, then %q)", errPathChanged, sess.name, name))
			return res, nil, err
		}
		return &base.Response{StatusCode: base.StatusOK}, sess.play.stream, nil
	}
	name, err := h.check(ctx.Conn, ctx.Request, ctx.Path, ctx.Query, auth.ActionRead)
	if err == nil {
		if err = h.s.reserve(sess.ip); err == nil {
			sess.reserved = true
		}
	}
	var d *described
	if err == nil {
		d = h.takeDescribed(ctx.Conn, name)
		if d == nil {
			d, err = h.describe(name)
		}
	}
	if err == nil {
		sess.cursor, err = d.st.Join()
	}
	if err != nil {
		res, err := h.fail(ctx.Conn, "SETUP", name, err)
		return res, nil, err
	}
	sess.name, sess.st, sess.play = name, d.st, d
	return &base.Response{StatusCode: base.StatusOK}, d.stream, nil
}

// OnPlay starts forwarding from the newest keyframe.
func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	sess := ctx.Session.UserData().(*session)
	if sess.reader == nil {
		tcp := h.s.tcpPathOf(ctx.Conn, ctx.Session, sess)
		sess.reader = newReader(ctx.Session, sess.st, sess.cursor, sess.play.desc, sess.play.take, tcp)
		sess.reader.start()
		h.s.log.Info("rtsp reader started", "stream", sess.name, "remote", sess.remote,
			"transport", ctx.Session.Transport().Protocol.String(), "tracks", len(sess.play.take),
			"direct", sess.reader.direct != nil)
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnRecord starts taking the publisher's packets.
func (h *handler) OnRecord(ctx *gortsplib.ServerHandlerOnRecordCtx) (*base.Response, error) {
	sess := ctx.Session.UserData().(*session)
	sess.pub.attach()
	h.s.log.Info("rtsp publisher recording", "stream", sess.name, "remote", sess.remote,
		"transport", ctx.Session.Transport().Protocol.String())
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// check validates the stream name of a request's path and authorizes the
// action on it.
func (h *handler) check(sc *gortsplib.ServerConn, req *base.Request, path, query string, action auth.Action) (string, error) {
	name := strings.Trim(path, "/")
	if !hub.ValidName(name) {
		return name, fmt.Errorf("%w: %.40q (%s)", errBadName, name, hub.NameRule)
	}
	r := auth.Request{Action: action, Stream: name, Token: h.tokenOf(sc, req, query), Remote: ipOf(remoteOf(sc))}
	ctx, cancel := context.WithTimeout(h.s.ctx, 10*time.Second)
	defer cancel()
	return name, h.s.deps.Auth.Authorize(ctx, r)
}

// describe waits (up to ReadyTimeout) for the stream's tracks and makes
// its description and ServerStream.
func (h *handler) describe(name string) (*described, error) {
	st, err := h.s.ready(name)
	if err != nil {
		return nil, err
	}
	var tc []trackCodec
	for _, t := range st.Tracks() {
		if t.Derived {
			// Transcoded for WebRTC viewers (hub/derive.go): an RTSP
			// reader gets the published codec.
			continue
		}
		tc = append(tc, trackCodec{index: t.Index, codec: t.Codec})
	}
	desc, take, skipped := describe(tc)
	if len(take) == 0 {
		return nil, fmt.Errorf("%w (%s)", errNoTracks, strings.Join(skipped, ", "))
	}
	stream := &gortsplib.ServerStream{Server: h.srv, Desc: desc}
	if err := stream.Initialize(); err != nil {
		return nil, err
	}
	return &described{name: name, st: st, desc: desc, take: take, stream: stream}, nil
}

// takeDescribed returns what the connection's last DESCRIBE made for the
// stream, if it is still the live one, and forgets it.
func (h *handler) takeDescribed(sc *gortsplib.ServerConn, name string) *described {
	h.s.mu.Lock()
	d := h.s.describes[sc]
	delete(h.s.describes, sc)
	h.s.mu.Unlock()
	if d == nil || d.name != name {
		return nil
	}
	select {
	case <-d.st.Done():
		return nil
	default:
		return d
	}
}

// ready returns the named stream once its tracks are known: an on-demand
// source is started and waited for, like a publisher still connecting.
func (s *Server) ready(name string) (*hub.Stream, error) {
	demanded := s.deps.Sources != nil && s.deps.Sources.Demand(name)
	st, err := s.deps.Hub.Lookup(name)
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.ReadyTimeout)
	defer cancel()
	if err != nil && demanded {
		if st, err = s.deps.Hub.Await(ctx, name); err != nil {
			return nil, fmt.Errorf("%w: source %q not ready within %s", errNotReady, name, s.cfg.ReadyTimeout)
		}
	}
	if err != nil {
		return nil, err
	}
	select {
	case <-st.Ready():
	case <-st.Done():
		return nil, hub.ErrEnded
	case <-ctx.Done():
	}
	if len(st.Tracks()) == 0 {
		return nil, fmt.Errorf("%w (waited %s)", errNotReady, s.cfg.ReadyTimeout)
	}
	return st, nil
}

// fail logs a refused request and makes its answer.
func (h *handler) fail(sc *gortsplib.ServerConn, method, name string, err error) (*base.Response, error) {
	res, rerr := reply(err)
	h.s.log.Warn("rtsp request failed", "method", method, "stream", name, "remote", remoteOf(sc),
		"status", int(res.StatusCode), "err", err)
	return res, rerr
}

// tokenOf is the request's token: the "token" query parameter, else the
// password of Basic credentials (any user name), else the known token
// that Digest credentials (any user name but an empty one) answer with.
func (h *handler) tokenOf(sc *gortsplib.ServerConn, req *base.Request, query string) string {
	if q, err := url.ParseQuery(query); err == nil {
		if t := q.Get("token"); t != "" {
			return t
		}
	}
	v, ok := req.Header["Authorization"]
	if !ok {
		// Makes the connection's nonce, which the challenge carries.
		sc.VerifyCredentials(req, "-", "")
		return ""
	}
	var a headers.Authorization
	if a.Unmarshal(v) != nil {
		return ""
	}
	switch a.Method {
	case headers.AuthMethodBasic:
		return a.BasicPass
	case headers.AuthMethodDigest:
		if h.s.deps.DigestTokens == nil || a.Username == "" {
			return ""
		}
		for _, t := range h.s.deps.DigestTokens() {
			if t != "" && sc.VerifyCredentials(req, a.Username, t) {
				return t
			}
		}
	}
	return ""
}

// protocolOf is "rtsps" for a connection over TLS, else "rtsp".
func protocolOf(sc *gortsplib.ServerConn) string {
	if sc == nil {
		return "rtsp"
	}
	if _, ok := sc.NetConn().(*tls.Conn); ok {
		return "rtsps"
	}
	return "rtsp"
}

// OnResponse offers Digest in a challenge only while some token can be
// found from a Digest answer, and notes what a TCP reader needs
// (gortsplib.ServerHandlerOnResponse).
func (h *handler) OnResponse(sc *gortsplib.ServerConn, res *base.Response) {
	h.noteResponse(sc, res)
	if res.StatusCode != base.StatusUnauthorized || h.hasDigestTokens() {
		return
	}
	var keep base.HeaderValue
	for _, v := range res.Header["WWW-Authenticate"] {
		if !strings.HasPrefix(v, "Digest ") {
			keep = append(keep, v)
		}
	}
	if keep != nil {
		res.Header["WWW-Authenticate"] = keep
	}
}

func (h *handler) hasDigestTokens() bool {
	if h.s.deps.DigestTokens == nil {
		return false
	}
	for _, t := range h.s.deps.DigestTokens() {
		if t != "" {
			return true
		}
	}
	return false
}

func remoteOf(sc *gortsplib.ServerConn) string {
	if sc == nil || sc.NetConn() == nil {
		return ""
	}
	return sc.NetConn().RemoteAddr().String()
}

func ipOf(remote string) netip.Addr {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// isClosed tells an ordinary end (TEARDOWN, the client or sluice closing)
// from a failure worth a log line.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "teared down") ||
		strings.Contains(err.Error(), "terminated") || strings.Contains(err.Error(), "EOF")
}
