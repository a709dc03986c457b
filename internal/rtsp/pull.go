package rtsp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/ingest"
)

// Transports a pull may use (config sources[].transport).
const (
	TransportAuto = "auto" // UDP, falling back to TCP when no UDP packet comes
	TransportTCP  = "tcp"
	TransportUDP  = "udp"
)

// ErrPullURL is a source URL the client cannot use.
var ErrPullURL = errors.New("invalid source URL")

// PullConfig is how one source is pulled: the RTSP server the edge plays
// in client mode.
type PullConfig struct {
	// Stream is the hub stream the source publishes.
	Stream string
	// URL is rtsp:// or rtsps://, credentials in it (gortsplib answers
	// Basic and Digest challenges with them).
	URL string
	// Transport is TransportAuto ("" too), TransportTCP or TransportUDP.
	Transport string
	// ReadTimeout bounds each request and, while playing, the silence of
	// the camera before the pull counts as lost; default 10s.
	ReadTimeout time.Duration
	// Ingest bounds each track's reorder window and keyframe requests,
	// as for every publisher.
	Ingest ingest.Options
}

// Pull plays the source and publishes it into h as cfg.Stream until ctx
// ends (nil is returned) or the connection fails (the reason). connected,
// if not nil, is called once packets may flow, with the transport in use
// ("UDP", "TCP"); switched, if not nil, when auto falls back to TCP.
//
// The stream is left like a publisher leaves it: a pull that fails waits
// the reconnect grace for the next one, so viewers keep their sessions
// when the camera comes back in time; a pull stopped by ctx ends the
// stream (nobody asked to keep it).
func Pull(ctx context.Context, h *hub.Hub, cfg PullConfig, connected, switched func(transport string)) error {
	u, err := base.ParseURL(cfg.URL)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPullURL, err)
	}
	var pub atomic.Pointer[publication]
	c := &gortsplib.Client{
		Scheme:      u.Scheme,
		Host:        u.Host,
		ReadTimeout: cfg.ReadTimeout,
		// gortsplib logs these with the standard logger by default: loss
		// is counted by ingest instead, and a per-packet path logs nothing.
		OnPacketsLost: func(uint64) {},
		OnDecodeError: func(error) {},
		OnTransportSwitch: func(error) {
			if p := pub.Load(); p != nil {
				p.hold() // no keyframe request while the medias are set up again
			}
			if switched != nil {
				switched("TCP")
			}
		},
	}
	switch cfg.Transport {
	case TransportTCP:
		p := gortsplib.ProtocolTCP
		c.Protocol = &p
	case TransportUDP:
		p := gortsplib.ProtocolUDP
		c.Protocol = &p
	}
	if err := c.Start(); err != nil {
		return err
	}
	// Close ends any request in flight, so that a camera that does not
	// answer cannot hold the pull past ctx.
	stop := context.AfterFunc(ctx, c.Close)
	defer func() {
		stop()
		c.Close()
	}()

	p, err := play(c, u, h, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	pub.Store(p)
	if connected != nil {
		connected(transportOf(c))
	}
	err = c.Wait()
	if ctx.Err() != nil {
		p.end()
		return nil
	}
	p.close()
	return err
}

// play describes the source, sets up the medias sluice carries, claims
// the stream and starts playing.
func play(c *gortsplib.Client, u *base.URL, h *hub.Hub, cfg PullConfig) (*publication, error) {
	desc, _, err := c.Describe(u)
	if err != nil {
		return nil, err
	}
	tracks, err := accepted(desc)
	if err != nil {
		return nil, err
	}
	set := map[*description.Media]bool{}
	for _, t := range tracks {
		if set[t.medi] {
			continue
		}
		set[t.medi] = true
		if _, err := c.Setup(desc.BaseURL, t.medi, 0, 0); err != nil {
			return nil, err
		}
	}
	p, err := publish(h, cfg.Stream, tracks, c, cfg.Ingest, u.Scheme, u.Host)
	if err != nil {
		return nil, err
	}
	p.attach() // before PLAY: no packet is missed
	if _, err := c.Play(nil); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func transportOf(c *gortsplib.Client) string {
	if t := c.Transport(); t != nil && t.Session != nil {
		return t.Session.Protocol.String()
	}
	return ""
}

// end leaves the stream and ends it: the pull was stopped on purpose (no
// reader left, the source removed, sluice closing), so no viewer waits
// for it to come back.
func (p *publication) end() {
	p.close()
	// Only if nobody took the stream over since (Detached is false then).
	if p.st.Detached() {
		p.st.End()
	}
}
