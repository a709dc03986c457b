package cluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/wheppull"
)

// link is one WHEP session from this node (the client) to a stream's
// owner, whose media it writes into this node's hub as the stream's
// publisher: a wheppull.Link signed as a cluster pull.
type link struct {
	*wheppull.Link
	c      *Cluster
	stream string
	owner  Owner
}

// dial opens a WHEP session to the owner of stream: an offer to receive
// audio and video in the codecs sluice ingests, signed as a cluster pull.
func dial(ctx context.Context, c *Cluster, stream string, owner Owner) (*link, error) {
	// A simulcast stream's best layer: the edge's own viewers choose
	// from what the edge has (a no-op for a stream without simulcast).
	endpoint := strings.TrimSuffix(owner.URL, "/") + "/whep/" + url.PathEscape(stream) + "?layer=high"
	wl, err := wheppull.Dial(ctx, wheppull.Config{
		Peers: c.peers, HTTP: c.hc, Endpoint: endpoint, ConnectTimeout: c.cfg.ConnectTimeout, Ingest: c.cfg.Ingest,
		// A fresh pull signature for each request to the owner.
		Auth: func(h http.Header) { h.Set(PeerHeader, signPull(c.cfg.Secret, c.cfg.NodeID, stream, time.Now())) },
		Late: &c.counts.pullLate, Duplicate: &c.counts.pullDup, Unrecovered: &c.counts.pullUnrecovered,
		// The owner may be gone: its DELETE must not hold up the pull.
		Background: c.wg.Go,
	})
	if err != nil {
		return nil, fmt.Errorf("owner %s: %w", owner.Node, err)
	}
	return &link{Link: wl, c: c, stream: stream, owner: owner}, nil
}

// attach makes the link the publisher of its stream in h.
func (l *link) attach(h *hub.Hub) error { return l.Attach(h, l.stream) }

func (l *link) hubStream() *hub.Writer { return l.Writer() }

func (l *link) isFailed() bool { return l.IsFailed() }

// reason says why the link ended.
func (l *link) reason() string {
	if err := l.Err(); err != nil {
		return err.Error()
	}
	return "owner changed"
}

// close detaches the link from its stream, closes it and ends the session
// at the owner in the background.
func (l *link) close() { l.Close() }
