package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-media/sluice/internal/client"
)

// publisher is one stream's WHIP publisher and the goroutine feeding it.
type publisher struct {
	url  string
	pub  *client.Publisher
	feed *feeder
	stop context.CancelFunc
}

// streamURL is the URL of stream i of n. A base with "{n}" in it has that
// replaced: by nothing for one stream, by "-" + (i+1) for several (a
// MediaMTX URL names the stream before "/whip"); any other base is itself
// for one stream and gets "-" + (i+1) appended for several.
func streamURL(base string, i, n int) string {
	suffix := ""
	if n > 1 {
		suffix = "-" + strconv.Itoa(i+1)
	}
	if strings.Contains(base, "{n}") {
		return strings.ReplaceAll(base, "{n}", suffix)
	}
	return base + suffix
}

// publish connects one publisher per stream, one after another, and
// starts feeding each. On error it returns those already started, for
// closePublishers.
func (r *runner) publish(ctx context.Context, m *media) ([]*publisher, error) {
	var pubs []*publisher
	for i := range r.cfg.Streams {
		url := streamURL(r.cfg.WHIP, i, r.cfg.Streams)
		pctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		pub, err := client.Publish(pctx, url, client.PublishOptions{
			Token: r.cfg.Token, H264Fmtp: m.fmtp,
			HTTPClient: &http.Client{Transport: r.transport},
		})
		cancel()
		if err != nil {
			return pubs, fmt.Errorf("publish to %s: %w", url, err)
		}
		feed := newFeeder(pub, m, r.logs[i])
		fctx, stop := context.WithCancel(ctx)
		go feed.run(fctx)
		pubs = append(pubs, &publisher{url: url, pub: pub, feed: feed, stop: stop})
		if r.cfg.Streams > 1 {
			r.pr.bar("publishers", float64(i+1), float64(r.cfg.Streams), fmt.Sprintf("%d/%d", i+1, r.cfg.Streams))
		}
	}
	return pubs, nil
}

// closePublishers stops the feeders and closes the publishers.
func (r *runner) closePublishers(pubs []*publisher) {
	for _, p := range pubs {
		p.stop()
		<-p.feed.done
		_ = p.pub.Close()
	}
}

// ended says why the publisher is gone, or nil while it runs.
func (p *publisher) ended() error {
	select {
	case <-p.pub.Done():
		return fmt.Errorf("%s: %w", p.url, errEnded)
	case <-p.feed.done:
		if err := p.feed.result(); err != nil {
			return fmt.Errorf("publisher %s: %w", p.url, err)
		}
		return fmt.Errorf("%s: %w", p.url, errEnded)
	default:
		return nil
	}
}

// sent is what a publisher has sent so far.
type sent struct{ packets, videoBytes uint64 }

func (s sent) sub(o sent) sent { return sent{s.packets - o.packets, s.videoBytes - o.videoBytes} }

func sentOf(pubs []*publisher) []sent {
	out := make([]sent, len(pubs))
	for i, p := range pubs {
		v, a := p.pub.SentPackets()
		out[i] = sent{packets: v + a, videoBytes: p.feed.videoBytes.Load()}
	}
	return out
}
