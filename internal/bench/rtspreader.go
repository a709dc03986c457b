package bench

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// rtspReader is one RTSP reader of a stream: gortsplib's client playing
// it over TCP (interleaved), its RTP packets fed to a probe as a WHEP
// viewer's are. It does not depacketize.
type rtspReader struct {
	c    *gortsplib.Client
	done chan struct{} // closed when the client's session ended
}

// Done is closed when the reader's session has ended.
func (r *rtspReader) Done() <-chan struct{} { return r.done }

// Close ends the session and waits for the client's goroutines.
func (r *rtspReader) Close() error {
	r.c.Close()
	<-r.done
	return nil
}

// readRTSP plays rawURL (DESCRIBE, SETUP of every media, PLAY) and feeds
// every RTP packet to p. The token, when set, goes as the RTSP password,
// which sluice's auth takes. p.postAt is set when the DESCRIBE goes out,
// so that setup and the first keyframe are timed from it as a WHEP
// viewer's are from its POST.
func readRTSP(ctx context.Context, rawURL, token string, timeout time.Duration, p *probe) (*rtspReader, error) {
	if token != "" {
		pu, err := url.Parse(rawURL)
		if err != nil {
			return nil, err
		}
		pu.User = url.UserPassword("bench", token)
		rawURL = pu.String()
	}
	u, err := base.ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: timeout, WriteTimeout: timeout}
	if err := c.Start(); err != nil {
		return nil, err
	}
	r := &rtspReader{c: c, done: make(chan struct{})}
	go func() {
		_ = c.Wait()
		close(r.done)
	}()
	// The client's requests are bounded by its timeouts; ctx ends them
	// sooner by closing it.
	stop := context.AfterFunc(ctx, c.Close)
	defer stop()
	fail := func(err error) (*rtspReader, error) {
		_ = r.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	p.postAt.Store(p.log.now())
	desc, _, err := c.Describe(u)
	if err != nil {
		return fail(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		return fail(err)
	}
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		kind := webrtc.RTPCodecTypeAudio
		if m.Type == description.MediaTypeVideo {
			kind = webrtc.RTPCodecTypeVideo
		}
		p.onRTP(kind, pkt)
	})
	if _, err := c.Play(nil); err != nil {
		return fail(err)
	}
	return r, nil
}

// rtspStatus is the RTSP status of a failed request, 0 if err is no
// status answer.
func rtspStatus(err error) int {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return int(bad.Code)
	}
	return 0
}
