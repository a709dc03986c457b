package rtsp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

var opusCodec = media.Codec{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}

// publishAV writes frames of three H264 packets (a keyframe every tenth)
// and an Opus packet every 20 ms, with sender reports that put the
// publisher's wall clock at wall, until ctx is done.
func publishAV(ctx context.Context, w *hub.Writer, wall time.Time) {
	var vseq, aseq uint16
	var vts, ats uint32
	w.SetSenderReport(0, media.ToNTP(wall), 0)
	w.SetSenderReport(1, media.ToNTP(wall), 0)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		nals := [][]byte{{0x61, 0xe0, 0x01, byte(i)}, {0x61, 0xe0, 0x02, byte(i)}, {0x61, 0xe0, 0x03, byte(i)}}
		if i%10 == 0 {
			nals = [][]byte{{0x67, 0x42, 0xe0, 0x1f}, {0x68, 0xce}, {0x65, 0x88, 0x84, byte(i)}}
		}
		for j, n := range nals {
			w.Write(&hub.Packet{Track: 0, Marker: j == len(nals)-1, PayloadType: 96, SequenceNumber: vseq, Timestamp: vts, Payload: n})
			vseq++
		}
		w.Write(&hub.Packet{Track: 1, Marker: true, PayloadType: 111, SequenceNumber: aseq, Timestamp: ats, Payload: []byte{0xfc, byte(i)}})
		aseq++
		vts += 1800
		ats += 960
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// TestTCPReaderDirect: a TCP reader's frames go straight to its
// connection, several packets a write; the packets are whole and in
// order with the SSRC gortsplib announced, and the reader's own sender
// reports give the player the publisher's wall clock.
func TestTCPReaderDirect(t *testing.T) {
	h := newHub()
	srv := newTestServer(t, h, nil, nil)
	w, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec, opusCodec})
	w.AddTrack(h264Codec)
	w.AddTrack(opusCodec)
	wall := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { publishAV(ctx, w, wall) })
	defer wg.Wait()
	defer cancel()

	proto := gortsplib.ProtocolTCP
	c := gortsplib.Client{Scheme: "rtsp", Host: srv.Addr().String(), Protocol: &proto, ReadTimeout: 3 * time.Second}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u, _ := base.ParseURL("rtsp://" + srv.Addr().String() + "/cam")
	desc, _, err := c.Describe(u)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	type got struct {
		ssrc   uint32
		seq    uint16
		ntp    time.Time
		hasNTP bool
		ts     uint32
	}
	var mu sync.Mutex
	pkts := map[*description.Media][]got{}
	srs := map[uint32]int{}
	enough := make(chan struct{})
	c.OnPacketRTPAny(func(m *description.Media, _ format.Format, p *rtp.Packet) {
		ntp, ok := c.PacketNTP(m, p)
		mu.Lock()
		defer mu.Unlock()
		pkts[m] = append(pkts[m], got{p.SSRC, p.SequenceNumber, ntp, ok, p.Timestamp})
		if len(pkts[desc.Medias[1]]) == 30 {
			close(enough)
		}
	})
	c.OnPacketRTCPAny(func(_ *description.Media, p rtcp.Packet) {
		if sr, ok := p.(*rtcp.SenderReport); ok {
			mu.Lock()
			srs[sr.SSRC]++
			mu.Unlock()
		}
	})
	if _, err := c.Play(nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-enough:
	case <-time.After(5 * time.Second):
		t.Fatal("30 audio packets did not arrive")
	}
	if n := srv.directReaders.Load(); n != 1 {
		t.Fatalf("%d readers on the direct path, want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	for i, m := range desc.Medias {
		ps := pkts[m]
		if len(ps) < 10 {
			t.Fatalf("media %d: %d packets", i, len(ps))
		}
		for j := 1; j < len(ps); j++ {
			if ps[j].ssrc != ps[0].ssrc || ps[j].seq != ps[j-1].seq+1 {
				t.Fatalf("media %d packet %d: ssrc %d seq %d after ssrc %d seq %d", i, j, ps[j].ssrc, ps[j].seq, ps[0].ssrc, ps[j-1].seq)
			}
		}
		if srs[ps[0].ssrc] == 0 {
			t.Fatalf("media %d: no sender report for SSRC %d (reports: %v)", i, ps[0].ssrc, srs)
		}
		last := ps[len(ps)-1]
		if !last.hasNTP {
			t.Fatalf("media %d: the player has no wall clock for its packets", i)
		}
		// The publisher's clock: wall at RTP time 0 of its timeline, so a
		// packet's NTP time is wall plus its media time (bounded by the
		// run: under 10 s of frames).
		if d := last.ntp.Sub(wall); d < 0 || d > 10*time.Second {
			t.Fatalf("media %d: NTP %v is %v from the publisher's clock", i, last.ntp, d)
		}
	}
	if vd, ad := pkts[desc.Medias[0]], pkts[desc.Medias[1]]; len(vd) > 0 && len(ad) > 0 {
		// Audio and video of the same instant map to the same wall time.
		v, a := vd[len(vd)-1], ad[len(ad)-1]
		if d := v.ntp.Sub(a.ntp); d < -100*time.Millisecond || d > 100*time.Millisecond {
			t.Fatalf("video at %v, audio at %v: %v apart", v.ntp, a.ntp, d)
		}
	}
	if w, n := srv.directWrites.Load(), srv.directRTP.Load(); w == 0 || w >= n {
		t.Fatalf("%d writes for %d packets: not batched", w, n)
	}
}

// TestTCPReaderFramesFollowPlay: on the wire, the first interleaved
// frame comes after the PLAY response, never before it (a reader starts
// at PLAY, with a keyframe cached to write at once: a few sessions, since
// the race the gate closes is narrow).
func TestTCPReaderFramesFollowPlay(t *testing.T) {
	for range 5 {
		framesFollowPlay(t)
	}
}

func framesFollowPlay(t *testing.T) {
	h := newHub()
	srv := newTestServer(t, h, nil, nil)
	addr := srv.Addr().String()
	w, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec, opusCodec})
	w.AddTrack(h264Codec)
	w.AddTrack(opusCodec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { publishAV(ctx, w, time.Now()) })
	defer wg.Wait()
	defer cancel()

	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(nc)
	send := func(req string) (status string, header map[string]string) {
		t.Helper()
		if _, err := io.WriteString(nc, req); err != nil {
			t.Fatal(err)
		}
		first, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(first, "RTSP/1.0 ") {
			t.Fatalf("%q before the response to %q", first, strings.SplitN(req, "\r\n", 2)[0])
		}
		header = map[string]string{}
		n := 0
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if l = strings.TrimRight(l, "\r\n"); l == "" {
				break
			}
			k, v, _ := strings.Cut(l, ":")
			header[strings.ToLower(k)] = strings.TrimSpace(v)
		}
		if cl := header["content-length"]; cl != "" {
			for _, ch := range cl {
				n = n*10 + int(ch-'0')
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				t.Fatal(err)
			}
		}
		return strings.TrimSpace(first), header
	}
	st, _ := send("DESCRIBE rtsp://" + addr + "/cam RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n")
	if !strings.Contains(st, "200") {
		t.Fatal(st)
	}
	st, hd := send("SETUP rtsp://" + addr + "/cam/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n\r\n")
	if !strings.Contains(st, "200") {
		t.Fatal(st, hd)
	}
	sid, _, _ := strings.Cut(hd["session"], ";")
	st, _ = send("PLAY rtsp://" + addr + "/cam RTSP/1.0\r\nCSeq: 3\r\nSession: " + sid + "\r\n\r\n")
	if !strings.Contains(st, "200") {
		t.Fatal(st)
	}
	// Then only frames of the one media set up, on its channels.
	var rtpFrames int
	for rtpFrames < 20 {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if hdr[0] != '$' || (hdr[1] != 4 && hdr[1] != 5) {
			t.Fatalf("frame header % x", hdr)
		}
		b := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(br, b); err != nil {
			t.Fatal(err)
		}
		if hdr[1] == 4 {
			var p rtp.Packet
			if err := p.Unmarshal(b); err != nil {
				t.Fatal(err)
			}
			if len(p.Payload) == 0 || bytes.IndexByte([]byte{0x67, 0x68, 0x65, 0x61}, p.Payload[0]) < 0 {
				t.Fatalf("payload % x is not the publisher's", p.Payload)
			}
			rtpFrames++
		}
	}
}

// TestHalfOpenClosedAtReadTimeout: a connection that sends nothing, or
// stops in the middle of its first request, is closed at the read
// timeout (2 s here), not gortsplib's idle minute; one that has spoken
// keeps gortsplib's timeouts.
func TestHalfOpenClosedAtReadTimeout(t *testing.T) {
	h := newHub()
	srv := newTestServer(t, h, nil, nil)
	addr := srv.Addr().String()
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	partial, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer partial.Close()
	if _, err := io.WriteString(partial, "OPTIONS rtsp://"+addr+"/ RTSP/1.0\r\nCSe"); err != nil {
		t.Fatal(err)
	}
	spoke, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer spoke.Close()
	if _, err := io.WriteString(spoke, "OPTIONS rtsp://"+addr+"/ RTSP/1.0\r\nCSeq: 1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(spoke)
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "RTSP/1.0 200") {
		t.Fatalf("OPTIONS: %q %v", l, err)
	}
	start := time.Now()
	for _, c := range []net.Conn{silent, partial} {
		_ = c.SetReadDeadline(start.Add(8 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("a half-open connection: %v after %v, want EOF (closed by the server)", err, time.Since(start))
		}
	}
	// The connection that spoke is still open past the read timeout.
	_ = spoke.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := br.ReadByte(); err == io.EOF {
		t.Fatal("the server closed a connection that had spoken")
	}
}

// TestTunnelsOutliveFirstRequestTimeout: readers through an HTTP or a
// WebSocket tunnel (their RTSP inside HTTP, so gortsplib writes their
// packets, not the direct path) keep receiving past the first request's
// timeout (2 s here).
func TestTunnelsOutliveFirstRequestTimeout(t *testing.T) {
	h := newHub()
	srv := newTestServer(t, h, nil, nil)
	w, _ := h.Publish("cam", nopPub{}, []media.Codec{h264Codec, opusCodec})
	w.AddTrack(h264Codec)
	w.AddTrack(opusCodec)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { publishAV(ctx, w, time.Now()) })
	defer wg.Wait()
	defer cancel()
	for _, tun := range []gortsplib.Tunnel{gortsplib.TunnelHTTP, gortsplib.TunnelWebSocket} {
		var c *gortsplib.Client
		var desc *description.Session
		var err error
		// An HTTP tunnel is two connections, and gortsplib's server can
		// take the POST before the GET it belongs to ("did not found a
		// corresponding HTTP GET request"); the client then times out.
		// A few tries.
		for try := 0; try < 3; try++ {
			c = &gortsplib.Client{Scheme: "rtsp", Host: srv.Addr().String(), Tunnel: tun, ReadTimeout: 3 * time.Second}
			if err = c.Start(); err != nil {
				t.Fatal(err)
			}
			u, _ := base.ParseURL("rtsp://" + srv.Addr().String() + "/cam")
			if desc, _, err = c.Describe(u); err == nil {
				break
			}
			c.Close()
		}
		if err != nil {
			t.Fatal(tun, err)
		}
		if err := c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
			t.Fatal(tun, err)
		}
		var mu sync.Mutex
		var last time.Time
		var n int
		c.OnPacketRTPAny(func(*description.Media, format.Format, *rtp.Packet) {
			mu.Lock()
			last, n = time.Now(), n+1
			mu.Unlock()
		})
		start := time.Now()
		if _, err := c.Play(nil); err != nil {
			t.Fatal(tun, err)
		}
		time.Sleep(3 * time.Second) // past the 2 s first-request timeout
		mu.Lock()
		got, at := n, last
		mu.Unlock()
		c.Close()
		if got == 0 || at.Sub(start) < 2500*time.Millisecond {
			t.Fatalf("tunnel %d: %d packets, the last %v after PLAY", tun, got, at.Sub(start))
		}
	}
	if n := srv.directReaders.Load(); n != 0 {
		t.Fatalf("%d tunnelled readers on the direct path", n)
	}
}
