package rtsp

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/auth"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

var h264Codec = media.Codec{MimeType: "video/H264", ClockRate: 90000, Fmtp: "packetization-mode=1;profile-level-id=42e01f"}

type nopPub struct{}

func (nopPub) RequestKeyframe() {}

// udpPorts finds a free even UDP port and the next one, for gortsplib's
// RTP/RTCP pair.
func udpPorts(t *testing.T) (int, int) {
	t.Helper()
	for range 50 {
		a, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.LocalAddr().(*net.UDPAddr).Port
		a.Close()
		if p%2 != 0 || p >= 65535 {
			continue
		}
		c1, err1 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		c2, err2 := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p+1))
		if c1 != nil {
			c1.Close()
		}
		if c2 != nil {
			c2.Close()
		}
		if err1 == nil && err2 == nil {
			return p, p + 1
		}
	}
	t.Fatal("no free UDP port pair")
	return 0, 0
}

func newTestServer(t *testing.T, h *hub.Hub, authz auth.Authenticator, src Demander) *Server {
	t.Helper()
	rtpPort, rtcpPort := udpPorts(t)
	s, err := New(Config{Listen: "127.0.0.1:0", UDPRTPPort: rtpPort, UDPRTCPPort: rtcpPort, ReadyTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second, MaxSessionsPerIP: 20},
		Deps{Hub: h, Auth: authz, Log: slog.New(slog.DiscardHandler), Sources: src})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newHub() *hub.Hub {
	return hub.New(hub.Config{RingPackets: 1024, PLIMinInterval: 10 * time.Millisecond})
}

// writeGOP writes one access unit: SPS, PPS and IDR when key, else one
// non-IDR slice.
func writeGOP(st *hub.Writer, seq *uint16, ts uint32, key bool) {
	nals := [][]byte{{0x61, 0xe0, 0x01}}
	if key {
		nals = [][]byte{{0x67, 0x42, 0xe0, 0x1f}, {0x68, 0xce}, {0x65, 0x88, 0x84}}
	}
	for i, n := range nals {
		st.Write(&hub.Packet{Track: 0, Marker: i == len(nals)-1, PayloadType: 96, SequenceNumber: *seq, Timestamp: ts, Payload: n})
		*seq++
	}
}

// readFirst plays the stream with a gortsplib client over proto and
// returns the first n packets.
func readFirst(t *testing.T, addr, path string, proto gortsplib.Protocol, n int) []*rtp.Packet {
	t.Helper()
	c := gortsplib.Client{Scheme: "rtsp", Host: addr, Protocol: &proto, ReadTimeout: 3 * time.Second}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, err := base.ParseURL("rtsp://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*rtp.Packet
	done := make(chan struct{})
	c.OnPacketRTPAny(func(_ *description.Media, _ format.Format, p *rtp.Packet) {
		mu.Lock()
		defer mu.Unlock()
		if len(got) < n {
			got = append(got, p.Clone())
			if len(got) == n {
				close(done)
			}
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("got %d of %d packets", len(got), n)
	}
	return got
}

func TestReadStartsAtKeyframe(t *testing.T) {
	for _, proto := range []gortsplib.Protocol{gortsplib.ProtocolTCP, gortsplib.ProtocolUDP} {
		t.Run(proto.String(), func(t *testing.T) {
			h := newHub()
			srv := newTestServer(t, h, nil, nil)
			stW, err := h.Publish("cam", nopPub{}, []media.Codec{h264Codec})
			if err != nil {
				t.Fatal(err)
			}
			stW.AddTrack(h264Codec)
			var seq uint16 = 100
			ts := uint32(1000)
			writeGOP(stW, &seq, ts, false) // before any keyframe: never sent
			ts += 3000
			writeGOP(stW, &seq, ts, true)
			ts += 3000
			writeGOP(stW, &seq, ts, false)
			// Keep writing while the reader connects.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						ts += 3000
						writeGOP(stW, &seq, ts, i%10 == 9)
					}
				}
			})
			defer wg.Wait()
			defer cancel()
			got := readFirst(t, srv.Addr().String(), "/cam", proto, 6)
			if got[0].Payload[0]&0x1f != 7 {
				t.Fatalf("first packet NAL type %d, want 7 (SPS of the cached keyframe)", got[0].Payload[0]&0x1f)
			}
			if string(got[2].Payload) != string([]byte{0x65, 0x88, 0x84}) {
				t.Fatalf("third packet %x, want the IDR slice", got[2].Payload)
			}
			for i := 1; i < len(got); i++ {
				if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
					t.Fatalf("sequence %d after %d", got[i].SequenceNumber, got[i-1].SequenceNumber)
				}
				if got[i].SSRC != got[0].SSRC {
					t.Fatalf("SSRC changed")
				}
			}
		})
	}
}

// Each reader gets its own SSRC and sequence numbers.
func TestReadersOwnSSRC(t *testing.T) {
	h := newHub()
	srv := newTestServer(t, h, nil, nil)
	stW, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec})
	stW.AddTrack(h264Codec)
	var seq uint16
	ts := uint32(0)
	writeGOP(stW, &seq, ts, true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				ts += 3000
				writeGOP(stW, &seq, ts, false)
			}
		}
	})
	defer wg.Wait()
	defer cancel()
	a := readFirst(t, srv.Addr().String(), "/cam", gortsplib.ProtocolTCP, 3)
	b := readFirst(t, srv.Addr().String(), "/cam", gortsplib.ProtocolTCP, 3)
	if a[0].SSRC == b[0].SSRC {
		t.Fatalf("two readers share SSRC %d", a[0].SSRC)
	}
}

func TestPublishRecord(t *testing.T) {
	for _, proto := range []gortsplib.Protocol{gortsplib.ProtocolTCP, gortsplib.ProtocolUDP} {
		t.Run(proto.String(), func(t *testing.T) {
			h := newHub()
			srv := newTestServer(t, h, nil, nil)
			desc := &description.Session{Medias: []*description.Media{{
				Type:    description.MediaTypeVideo,
				Formats: []format.Format{&format.H264{PayloadTyp: 96, PacketizationMode: 1}},
			}, {
				Type:    description.MediaTypeAudio,
				Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}},
			}}}
			c := gortsplib.Client{Protocol: &proto}
			if err := c.StartRecording("rtsp://"+srv.Addr().String()+"/pub", desc); err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st, err := h.Lookup("pub")
			if err != nil {
				t.Fatal(err)
			}
			tracks := st.Tracks()
			if len(tracks) != 2 || tracks[0].Codec.MimeType != "video/H264" || tracks[1].Codec.MimeType != "audio/PCMA" {
				t.Fatalf("tracks %+v", tracks)
			}
			cur, err := st.Tap()
			if err != nil {
				t.Fatal(err)
			}
			defer cur.Close()
			for i := range 5 {
				p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 8, SequenceNumber: uint16(i), Timestamp: uint32(160 * i), SSRC: 5}, Payload: []byte{byte(i), 1, 2, 3}}
				if err := c.WritePacketRTP(desc.Medias[1], p); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for i := range 5 {
				p, _, err := cur.Next(ctx)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if p.Track != 1 || p.Payload[0] != byte(i) || p.SequenceNumber != uint16(i) {
					t.Fatalf("packet %d: track %d seq %d payload %x", i, p.Track, p.SequenceNumber, p.Payload)
				}
			}

			// A second publisher is refused with 409.
			c2 := gortsplib.Client{Protocol: &proto}
			err = c2.StartRecording("rtsp://"+srv.Addr().String()+"/pub", desc)
			if err == nil {
				c2.Close()
				t.Fatal("second publisher accepted")
			}
			if !strings.Contains(err.Error(), "409") {
				t.Fatalf("second publisher: %v, want 409", err)
			}
		})
	}
}

// Token auth: no credentials get 401 with a challenge, the token as the
// password or ?token= passes.
func TestAuthToken(t *testing.T) {
	h := newHub()
	authz := tokenAuth{"s3cret"}
	srv := newTestServer(t, h, authz, nil)
	stW, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec})
	stW.AddTrack(h264Codec)
	addr := srv.Addr().String()

	res := rawRequest(t, addr, "DESCRIBE rtsp://"+addr+"/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n")
	if !strings.HasPrefix(res, "RTSP/1.0 401") || !strings.Contains(res, "WWW-Authenticate: Basic") {
		t.Fatalf("no credentials: %q", res)
	}
	if strings.Contains(res, "Digest") {
		t.Errorf("Digest offered without a token it could be checked against: %q", res)
	}
	for _, u := range []string{"rtsp://any:s3cret@" + addr + "/cam", "rtsp://" + addr + "/cam?token=s3cret"} {
		c := gortsplib.Client{}
		pu, _ := base.ParseURL(u)
		c.Scheme, c.Host = pu.Scheme, pu.Host
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		_, _, err := c.Describe(pu)
		c.Close()
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
	}
	c := gortsplib.Client{Scheme: "rtsp", Host: addr}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pu, _ := base.ParseURL("rtsp://any:wrong@" + addr + "/cam")
	_, _, err := c.Describe(pu)
	c.Close()
	if err == nil {
		t.Fatal("wrong token accepted")
	}
}

// TestAuthDigestChallenge: with tokens to check Digest answers against,
// the challenge offers Digest (with a nonce) besides Basic; a Digest
// answer with the token passes, one with another password is refused.
func TestAuthDigestChallenge(t *testing.T) {
	h := newHub()
	rtpPort, rtcpPort := udpPorts(t)
	srv, err := New(Config{Listen: "127.0.0.1:0", UDPRTPPort: rtpPort, UDPRTCPPort: rtcpPort, ReadyTimeout: 2 * time.Second,
		ReadTimeout: 2 * time.Second},
		Deps{Hub: h, Auth: tokenAuth{"s3cret"}, Log: slog.New(slog.DiscardHandler),
			DigestTokens: func() []string { return []string{"other", "s3cret"} }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	st, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec})
	st.AddTrack(h264Codec)
	addr := srv.Addr().String()
	res := rawRequest(t, addr, "DESCRIBE rtsp://"+addr+"/cam RTSP/1.0\r\nCSeq: 1\r\n\r\n")
	if !strings.HasPrefix(res, "RTSP/1.0 401") || !strings.Contains(res, "WWW-Authenticate: Basic") ||
		!strings.Contains(res, `WWW-Authenticate: Digest realm="ipcam", nonce="`) {
		t.Fatalf("no credentials: %q, want Basic and Digest challenges", res)
	}
	for _, tc := range []struct {
		pass string
		ok   bool
	}{{"s3cret", true}, {"wrong", false}} {
		uri := "rtsp://" + addr + "/cam"
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		// The nonce is the connection's: ask for it on this one first.
		_, _ = conn.Write([]byte("DESCRIBE " + uri + " RTSP/1.0\r\nCSeq: 1\r\n\r\n"))
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 4096)
		n, _ := conn.Read(buf)
		first := string(buf[:n])
		nonce := first[strings.Index(first, `nonce="`)+7:]
		nonce = nonce[:strings.Index(nonce, `"`)]
		resp := md5hex(md5hex("viewer:ipcam:"+tc.pass) + ":" + nonce + ":" + md5hex("DESCRIBE:"+uri))
		_, _ = conn.Write([]byte("DESCRIBE " + uri + " RTSP/1.0\r\nCSeq: 2\r\nAuthorization: Digest username=\"viewer\", realm=\"ipcam\", nonce=\"" +
			nonce + "\", uri=\"" + uri + "\", response=\"" + resp + "\"\r\n\r\n"))
		n, _ = conn.Read(buf)
		conn.Close()
		got := string(buf[:n])
		if ok := strings.HasPrefix(got, "RTSP/1.0 200"); ok != tc.ok {
			t.Errorf("Digest answer with password %q: %q, want success %v", tc.pass, got, tc.ok)
		}
	}
}

func md5hex(s string) string {
	h := md5.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

type tokenAuth struct{ token string }

func (a tokenAuth) Authorize(_ context.Context, r auth.Request) error {
	switch r.Token {
	case "":
		return auth.ErrNoToken
	case a.token:
		return nil
	}
	return fmt.Errorf("%w: invalid token", auth.ErrUnauthenticated)
}

func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		b.WriteString(line)
		if err != nil || line == "\r\n" {
			break
		}
	}
	return b.String()
}

// Garbage, a stalled handshake and bad requests get their status or are
// dropped, and a reader still plays.
func TestBadInput(t *testing.T) {
	h := newHub()
	srv := newTestServer(t, h, nil, nil)
	addr := srv.Addr().String()
	stW, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec})
	stW.AddTrack(h264Codec)

	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	_, _ = stalled.Write([]byte("DESCRIBE rtsp://" + addr + "/cam RTSP/1.0\r\nCSe"))

	garbage, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = garbage.Write([]byte("\x00\xff\x13GET / HTTP/1.1\r\n\r\n\x24\x00\xff\xff"))
	garbage.Close()

	for _, c := range []struct{ req, status string }{
		{"DESCRIBE rtsp://" + addr + "/nope RTSP/1.0\r\nCSeq: 1\r\n\r\n", "404"},
		{"DESCRIBE rtsp://" + addr + "/bad%20name RTSP/1.0\r\nCSeq: 1\r\n\r\n", "400"},
		{"PLAY rtsp://" + addr + "/cam RTSP/1.0\r\nCSeq: 1\r\nSession: 12345678\r\n\r\n", "454"},
		{"SETUP rtsp://" + addr + "/cam/trackID=0 RTSP/1.0\r\nCSeq: 1\r\nTransport: RTP/AVP;multicast\r\n\r\n", "461"},
	} {
		res := rawRequest(t, addr, c.req)
		if !strings.HasPrefix(res, "RTSP/1.0 "+c.status) {
			t.Errorf("%q: %q, want %s", strings.SplitN(c.req, "\r\n", 2)[0], res, c.status)
		}
	}

	var seq uint16
	ts := uint32(0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				ts += 3000
				writeGOP(stW, &seq, ts, i%5 == 0)
			}
		}
	})
	defer wg.Wait()
	defer cancel()
	readFirst(t, addr, "/cam", gortsplib.ProtocolTCP, 4)
}
