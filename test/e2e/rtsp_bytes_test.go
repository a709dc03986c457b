package e2e

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5"
	"github.com/bluenviron/gortsplib/v5/pkg/base"
	"github.com/bluenviron/gortsplib/v5/pkg/description"
	"github.com/bluenviron/gortsplib/v5/pkg/format"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// rtspClipPublisher records the clip to rtsp://addr/stream with
// gortsplib's client (ANNOUNCE/SETUP/RECORD over TCP) at 25 fps, the
// parameter sets in the SDP and in band as the clip has them. It returns
// the access units sent so far, on demand.
type rtspClipPublisher struct {
	mu   sync.Mutex
	sent [][][]byte
	err  error
	done chan struct{}
}

func publishClipRTSP(ctx context.Context, t *testing.T, addr, stream string, clip [][][]byte) *rtspClipPublisher {
	t.Helper()
	forma := &format.H264{PayloadTyp: 96, PacketizationMode: 1}
	for _, n := range clip[0] {
		switch n[0] & 0x1f {
		case 7:
			forma.SPS = n
		case 8:
			forma.PPS = n
		}
	}
	desc := &description.Session{Medias: []*description.Media{{Type: description.MediaTypeVideo, Formats: []format.Format{forma}}}}
	tcp := gortsplib.ProtocolTCP
	c := &gortsplib.Client{Protocol: &tcp}
	if err := c.StartRecording("rtsp://"+addr+"/"+stream, desc); err != nil {
		t.Fatalf("RECORD: %v", err)
	}
	enc, err := forma.CreateEncoder()
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	p := &rtspClipPublisher{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer c.Close()
		tick := time.NewTicker(frameDuration)
		defer tick.Stop()
		ts := rand.Uint32()
		for i := 0; ; i++ {
			au := clip[i%len(clip)]
			pkts, err := enc.Encode(au)
			if err != nil {
				p.fail(err)
				return
			}
			// Noted before it is written: a viewer may get it before
			// WritePacketRTP returns.
			p.mu.Lock()
			p.sent = append(p.sent, au)
			p.mu.Unlock()
			for _, pkt := range pkts {
				pkt.Timestamp = ts
				if err := c.WritePacketRTP(desc.Medias[0], pkt); err != nil {
					p.fail(err)
					return
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
	return p
}

func (p *rtspClipPublisher) fail(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
}

func (p *rtspClipPublisher) result() ([][][]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent), p.err
}

// TestRTSPRecordToWHEPByteIdentical: a gortsplib client records the
// committed clip over RTSP; a pion WHEP viewer's access units are a run
// of the clip's, byte for byte, from a keyframe on, 40 ms apart in RTP
// time.
func TestRTSPRecordToWHEPByteIdentical(t *testing.T) {
	srv := startRTSPServer(t, false)
	clip := loadClip(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pctx, stop := context.WithCancel(ctx)
	pub := publishClipRTSP(pctx, t, srv.rtsp, "rec", clip)
	defer func() { stop(); <-pub.done }()

	sps := clipSPS(t)
	v, err := client.View(ctx, srv.base+"/whep/rec", client.ViewOptions{NoAudio: true,
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec(hexString(sps[1:4]), 1)}})
	if err != nil {
		t.Fatalf("view: %v", err)
	}
	defer v.Close()
	var got []client.AccessUnit
	for len(got) < 40 {
		select {
		case au := <-v.AccessUnits():
			got = append(got, au)
		case <-ctx.Done():
			t.Fatalf("viewer got %d access units in time", len(got))
		}
	}
	sent, err := pub.result()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	nalus := make([][][]byte, len(got))
	for i, au := range got {
		nalus[i] = au.NALUs
	}
	at := matchStart(sent, nalus)
	if at < 0 {
		t.Fatalf("the viewer's %d access units are no run of the %d recorded (first: %d NAL units)", len(got), len(sent), len(got[0].NALUs))
	}
	if !client.IsIDR(nalus[0]) {
		t.Errorf("the viewer's first access unit is not a keyframe")
	}
	for i := 1; i < len(got); i++ {
		if d := got[i].RTPTimestamp - got[i-1].RTPTimestamp; d != 3600 {
			t.Errorf("access unit %d: RTP timestamp advanced %d, want 3600", at+i, d)
			break
		}
	}
	t.Logf("viewer: %d access units from recorded #%d, byte for byte", len(got), at)
}

// rtspRecorder plays rtsp://addr/stream with gortsplib's client over TCP
// and keeps the H264 access units (depacketized by gortsplib) and the
// Opus payloads it gets.
type rtspRecorder struct {
	c *gortsplib.Client

	mu      sync.Mutex
	aus     [][][]byte
	opus    [][]byte
	opusTS  []uint32
	auTS    []uint32
	decErrs int
	h264, o bool // the medias described
}

func readRTSP(t *testing.T, addr, stream string) *rtspRecorder {
	t.Helper()
	u, err := base.ParseURL("rtsp://" + addr + "/" + stream)
	if err != nil {
		t.Fatal(err)
	}
	tcp := gortsplib.ProtocolTCP
	r := &rtspRecorder{c: &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Protocol: &tcp, ReadTimeout: 5 * time.Second}}
	if err := r.c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.c.Close)
	desc, _, err := r.c.Describe(u)
	if err != nil {
		t.Fatalf("DESCRIBE: %v", err)
	}
	if err := r.c.SetupAll(desc.BaseURL, desc.Medias); err != nil {
		t.Fatal(err)
	}
	var h264 *format.H264
	if m := desc.FindFormat(&h264); m != nil {
		r.h264 = true
		dec, err := h264.CreateDecoder()
		if err != nil {
			t.Fatal(err)
		}
		r.c.OnPacketRTP(m, h264, func(p *rtp.Packet) {
			au, err := dec.Decode(p)
			r.mu.Lock()
			defer r.mu.Unlock()
			switch {
			case err == nil:
				r.aus = append(r.aus, au)
				r.auTS = append(r.auTS, p.Timestamp)
			case errors.Is(err, rtph264.ErrMorePacketsNeeded), errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious):
			default:
				r.decErrs++
			}
		})
	}
	var opus *format.Opus
	if m := desc.FindFormat(&opus); m != nil {
		r.o = true
		r.c.OnPacketRTP(m, opus, func(p *rtp.Packet) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.opus = append(r.opus, slices.Clone(p.Payload))
			r.opusTS = append(r.opusTS, p.Timestamp)
		})
	}
	if _, err := r.c.Play(nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// counts returns how many access units and Opus packets arrived so far.
func (r *rtspRecorder) counts() (aus, opus int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.aus), len(r.opus)
}

// waitCounts polls until at least aus access units and opus Opus packets
// arrived, or d passes.
func (r *rtspRecorder) waitCounts(t *testing.T, aus, opus int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		a, o := r.counts()
		if a >= aus && o >= opus {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("RTSP reader: %d access units and %d Opus packets within %v, want %d and %d", a, o, d, aus, opus)
		}
		time.Sleep(20 * time.Millisecond) // the reader has no event for counts
	}
}

// TestWHIPToRTSPReaderByteIdentical: a pion WHIP publisher sends the clip
// and Opus test packets; a gortsplib RTSP reader gets H264 access units
// that are a run of the clip's, byte for byte, from a keyframe on, and
// the Opus packets unchanged and in order, 960 ticks apart.
func TestWHIPToRTSPReaderByteIdentical(t *testing.T) {
	srv := startRTSPServer(t, false)
	clip := loadClip(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/w", client.PublishOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, clip, 0)
	go f.run(ctx)
	defer func() { cancel(); <-f.done }()
	<-f.sentAU(5)

	r := readRTSP(t, srv.rtsp, "w")
	if !r.h264 || !r.o {
		t.Fatalf("DESCRIBE: H264 %v, Opus %v; want both", r.h264, r.o)
	}
	r.waitCounts(t, 40, 80, 15*time.Second)
	r.c.Close()
	// The feed notes an access unit once WriteH264 returned, which may be
	// after the reader got it: one more noted means all before it are.
	sent, _, _ := f.result()
	select {
	case <-f.sentAU(len(sent) + 1):
	case <-ctx.Done():
		t.Fatal("the feed stopped")
	}

	sent, nopus, err := f.result()
	if err != nil {
		t.Fatalf("publisher: %v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.decErrs > 0 {
		t.Errorf("%d H264 depacketizing errors", r.decErrs)
	}
	at := matchStart(sent, r.aus)
	if at < 0 {
		t.Fatalf("the reader's %d access units are no run of the %d sent (first: %d NAL units)", len(r.aus), len(sent), len(r.aus[0]))
	}
	if !client.IsIDR(r.aus[0]) {
		t.Errorf("the reader's first access unit is not a keyframe")
	}
	for i := 1; i < len(r.auTS); i++ {
		if d := r.auTS[i] - r.auTS[i-1]; d != 3600 {
			t.Errorf("access unit %d: RTP timestamp advanced %d, want 3600", at+i, d)
			break
		}
	}
	idx0, ok := client.OpusTestIndex(r.opus[0])
	if !ok {
		t.Fatalf("Opus packet 0 (%x) is no test packet", r.opus[0])
	}
	for i, p := range r.opus {
		n, ok := client.OpusTestIndex(p)
		if !ok || n != idx0+uint16(i) || string(p) != string(client.OpusTestPacket(n)) {
			t.Fatalf("Opus packet %d: not test packet %d unchanged", i, idx0+uint16(i))
		}
		if i > 0 && r.opusTS[i]-r.opusTS[i-1] != 960 {
			t.Fatalf("Opus packet %d: RTP timestamp advanced %d, want 960", i, r.opusTS[i]-r.opusTS[i-1])
		}
	}
	if int(idx0)+len(r.opus) > nopus {
		t.Errorf("reader got Opus packets up to #%d, only %d sent", int(idx0)+len(r.opus), nopus)
	}
	t.Logf("RTSP reader: %d access units from sent #%d, %d Opus packets from #%d, byte for byte", len(r.aus), at, len(r.opus), idx0)
}
