package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/liberrors"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// camera is an RTSP camera in the test process: a gortsplib server that
// plays the committed clip (H264, an IDR every second) in a loop at
// 25 fps, on TCP and, with udp, UDP. It can stop and start again on the
// same ports, like a camera that reboots.
type camera struct {
	t          *testing.T
	addr       string // host:port, fixed at the first start
	udp        [2]int // RTP and RTCP ports; 0 without UDP
	user, pass string // credentials it asks for; "" asks none

	describes atomic.Int32 // DESCRIBE requests, over all starts
	playing   atomic.Int32 // sessions playing now

	srv    *gortsplib.Server
	stream *gortsplib.ServerStream
	cancel context.CancelFunc
	done   chan struct{}
}

type cameraOptions struct {
	udp        bool
	user, pass string
}

func startCamera(t *testing.T, o cameraOptions) *camera {
	t.Helper()
	c := &camera{t: t, addr: "127.0.0.1:0", user: o.user, pass: o.pass}
	if o.udp {
		c.udp[0], c.udp[1] = freeUDPPair(t)
	}
	c.start()
	t.Cleanup(c.stop)
	return c
}

// url is the camera's stream URL, with these credentials if not empty.
func (c *camera) url(user, pass string) string {
	if user != "" {
		return fmt.Sprintf("rtsp://%s:%s@%s/live", user, pass, c.addr)
	}
	return "rtsp://" + c.addr + "/live"
}

// codec is the H264 codec a WHEP viewer offers for the clip.
func (c *camera) codec() webrtc.RTPCodecParameters {
	sps := clipSPS(c.t)
	return client.H264Codec(fmt.Sprintf("%02x%02x%02x", sps[1], sps[2], sps[3]), 1)
}

func clipSPS(t *testing.T) []byte {
	for _, n := range loadClip(t)[0] {
		if n[0]&0x1f == 7 {
			return n
		}
	}
	t.Fatal("the clip's first access unit has no SPS")
	return nil
}

func (c *camera) start() {
	t := c.t
	t.Helper()
	clip := loadClip(t)
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	for _, n := range clip[0] {
		switch n[0] & 0x1f {
		case 7:
			forma.SPS = n
		case 8:
			forma.PPS = n
		}
	}
	medi := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}
	c.srv = &gortsplib.Server{Handler: c, RTSPAddress: c.addr, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	if c.udp[0] != 0 {
		c.srv.UDPRTPAddress = fmt.Sprintf("127.0.0.1:%d", c.udp[0])
		c.srv.UDPRTCPAddress = fmt.Sprintf("127.0.0.1:%d", c.udp[1])
	}
	if err := c.srv.Start(); err != nil {
		t.Fatalf("camera: %v", err)
	}
	c.addr = c.srv.NetListener().Addr().String()
	c.stream = &gortsplib.ServerStream{Server: c.srv, Desc: &description.Session{Medias: []*description.Media{medi}}}
	if err := c.stream.Initialize(); err != nil {
		t.Fatal(err)
	}
	enc, err := forma.CreateEncoder()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan struct{})
	stream := c.stream
	go func() {
		defer close(c.done)
		tick := time.NewTicker(frameDuration)
		defer tick.Stop()
		ts := rand.Uint32()
		for i := 0; ; i++ {
			pkts, err := enc.Encode(clip[i%len(clip)])
			if err == nil {
				for _, p := range pkts {
					p.Timestamp = ts
					_ = stream.WritePacketRTP(medi, p)
				}
			}
			ts += 3600
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// stop closes the camera's sessions and port, as a camera that goes down.
func (c *camera) stop() {
	if c.srv == nil {
		return
	}
	c.cancel()
	<-c.done
	c.stream.Close()
	c.srv.Close()
	c.srv = nil
}

// OnDescribe asks for the credentials, if any, and describes the clip.
func (c *camera) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	c.describes.Add(1)
	if c.user != "" && !ctx.Conn.VerifyCredentials(ctx.Request, c.user, c.pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnSetup sets the clip up.
func (c *camera) OnSetup(*gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return &base.Response{StatusCode: base.StatusOK}, c.stream, nil
}

// OnPlay counts a playing session.
func (c *camera) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	c.playing.Add(1)
	ctx.Session.SetUserData(true)
	return &base.Response{StatusCode: base.StatusOK}, nil
}

// OnSessionClose counts a playing session's end.
func (c *camera) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	if ctx.Session.UserData() == true {
		c.playing.Add(-1)
	}
}

// sourceView is what the tests read of GET /v1/streams/{stream}.
type sourceView struct {
	Name   string `json:"name"`
	Live   bool   `json:"live"`
	Tracks []struct {
		Codec       string `json:"codec"`
		DerivedFrom *int   `json:"derived_from"` // a transcoded track, not the camera's
	} `json:"tracks"`
	Source *struct {
		URL        string  `json:"url"`
		State      string  `json:"state"`
		Using      string  `json:"using"`
		LastError  string  `json:"last_error"`
		Reconnects int     `json:"reconnects"`
		RetryIn    float64 `json:"retry_in_seconds"`
	} `json:"source"`
	raw string
}

func getSource(t *testing.T, base, stream string) sourceView {
	t.Helper()
	code, _, body := do(t, http.MethodGet, base+"/v1/streams/"+stream, "", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /v1/streams/%s: %d %s", stream, code, body)
	}
	var v sourceView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("GET /v1/streams/%s: %v: %s", stream, err, body)
	}
	if v.Source == nil {
		t.Fatalf("GET /v1/streams/%s has no source: %s", stream, body)
	}
	v.raw = body
	return v
}

// waitSource polls the stream's source state until cond holds.
func waitSource(t *testing.T, base, stream, what string, d time.Duration, cond func(sourceView) bool) sourceView {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v := getSource(t, base, stream)
		if cond(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: source %s not %s within %v: %s", t.Name(), stream, what, d, v.raw)
		}
		time.Sleep(50 * time.Millisecond) // state is polled: the API has no events for it
	}
}

// metricLine returns the value line of a metric in /metrics, "" if absent.
func metricLine(t *testing.T, base, name string) string {
	t.Helper()
	_, _, body := do(t, http.MethodGet, base+"/metrics", "", nil)
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			return l
		}
	}
	return ""
}
