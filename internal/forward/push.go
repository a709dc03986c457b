package forward

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortmplib"
	gosrt "github.com/datarhei/gosrt"

	"github.com/sluice-media/sluice/internal/rtmp"
	"github.com/sluice-media/sluice/internal/srt"
	"github.com/sluice-media/sluice/internal/tap"
)

// pushRTMP publishes to an rtmp:// or rtmps:// target. The last path
// element is the stream key (with the query, which some services read as
// part of it): rtmp://a.rtmp.youtube.com/live2/KEY connects to app
// "live2" and publishes "KEY".
func (t *target) pushRTMP(ctx context.Context, sub *tap.Subscription) error {
	u := *t.u
	dir, key := path.Split(u.Path)
	if key != "" {
		u.Path = strings.TrimSuffix(dir, "/")
		u.Fragment = key
		if u.RawQuery != "" {
			u.Fragment += "?" + u.RawQuery
		}
		u.RawQuery = ""
	}
	c := &gortmplib.Client{URL: &u, Publish: true, TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	dctx, cancel := context.WithTimeout(ctx, t.f.cfg.DialTimeout)
	err := c.Initialize(dctx)
	cancel()
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, c.Close) // a blocked write ends with the push
	defer stop()
	return rtmp.Send(ctx, t.watch(sub, c.BytesSent), c, c.NetConn(), t.f.cfg.WriteTimeout)
}

// pushSRT publishes to an srt://host:port target; the query gives the
// stream id (streamid=…), passphrase and latency (ms) as ffmpeg's do.
func (t *target) pushSRT(ctx context.Context, sub *tap.Subscription) error {
	q := t.u.Query()
	conf := gosrt.DefaultConfig()
	conf.StreamId = q.Get("streamid")
	conf.Passphrase = q.Get("passphrase")
	conf.PayloadSize = 7 * 188
	conf.ConnectionTimeout = t.f.cfg.DialTimeout
	conf.PeerIdleTimeout = t.f.cfg.WriteTimeout
	if l := q.Get("latency"); l != "" {
		ms, err := strconv.Atoi(l)
		if err != nil || ms < 0 {
			return fmt.Errorf("latency=%q is not milliseconds", l)
		}
		conf.Latency = time.Duration(ms) * time.Millisecond
	}
	addr := net.JoinHostPort(t.u.Hostname(), t.u.Port())
	conn, err := gosrt.DialWithContext(ctx, "srt", addr, conf)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	cw := &countWriter{w: conn}
	return srt.Send(ctx, t.watch(sub, cw.n.Load), cw)
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n atomic.Uint64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n.Add(uint64(n))
	return n, err
}

// watch wraps a subscription to mark the target running when the first
// unit goes out.
func (t *target) watch(sub *tap.Subscription, sent func() uint64) *watched {
	return &watched{Subscription: sub, t: t, sent: sent}
}

type watched struct {
	*tap.Subscription
	t       *target
	sent    func() uint64
	started bool
}

// Next implements rtmp.Units and srt.Units.
func (w *watched) Next(ctx context.Context) (*tap.Unit, error) {
	u, err := w.Subscription.Next(ctx)
	if err == nil && !w.started {
		w.started = true
		w.t.running(w.sent)
	}
	return u, err
}
