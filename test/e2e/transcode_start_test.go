package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// firstPackets is when a viewer got its first audio and video packets,
// counted from its WHEP request.
type firstPackets struct {
	mu           sync.Mutex
	start        time.Time
	audio, video time.Duration
}

func (f *firstPackets) onRTP(kind webrtc.RTPCodecType, _ *rtp.Packet) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := time.Since(f.start)
	if kind == webrtc.RTPCodecTypeAudio && f.audio == 0 {
		f.audio = d
	} else if kind == webrtc.RTPCodecTypeVideo && f.video == 0 {
		f.video = d
	}
}

// viewFirst starts a viewer that takes Opus and H264 only and waits
// (bounded) for its first packet of each kind; the viewer is closed with
// the test.
func viewFirst(ctx context.Context, t *testing.T, url string) (audio, video time.Duration) {
	t.Helper()
	f := &firstPackets{start: time.Now()}
	v, err := client.View(ctx, url, client.ViewOptions{OnRTP: f.onRTP,
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	go drain(v)
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		audio, video = f.audio, f.video
		f.mu.Unlock()
		if audio > 0 && video > 0 {
			return audio, video
		}
		select {
		case <-deadline:
			t.Fatalf("after 10 s: first audio packet at %v, video at %v", audio, video)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// TestTranscodeStartLatency measures (logs, asserts no time) how soon a
// WebRTC viewer of an AAC stream hears Opus: the first viewer's demand
// starts the AAC→Opus transcoder, which transcodes the audio of the GOP
// the ring holds at once; a second viewer joins it running. For each, the
// time from its WHEP request to its first audio and first video packet:
// what the transcoder adds is the audio's lead or lag over the video,
// which the session's own setup (HTTP, ICE, DTLS) delays alike.
func TestTranscodeStartLatency(t *testing.T) {
	needTranscode(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	src := startHubSource(ctx, t, srv.Hub(), "lat", aacStereo, true)
	defer func() { cancel(); <-src.done }()
	<-src.st.Ready()
	// Past the first GOP, as a stream that viewers join.
	select {
	case <-time.After(1500*time.Millisecond - time.Since(src.t0)):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	const running = `sluice_transcoders{from="aac",to="opus"}`
	if s := scrapeMetrics(t, srv.base); s.get(running) != 0 {
		t.Fatalf("%s = %v before any viewer, want 0", running, s.get(running))
	}
	a1, v1 := viewFirst(ctx, t, srv.base+"/whep/lat")
	if s := scrapeMetrics(t, srv.base); s.get(running) != 1 {
		t.Fatalf("%s = %v with a viewer, want 1", running, s.get(running))
	}
	a2, v2 := viewFirst(ctx, t, srv.base+"/whep/lat")
	if s := scrapeMetrics(t, srv.base); s.get(running) != 1 {
		t.Errorf("%s = %v with two viewers, want 1 (shared)", running, s.get(running))
	}
	t.Logf("viewer that starts the transcoder: first audio packet %v after its WHEP request, first video %v (audio %+v after video)",
		a1.Round(time.Microsecond), v1.Round(time.Microsecond), (a1 - v1).Round(time.Microsecond))
	t.Logf("viewer that joins it running: first audio packet %v after its WHEP request, first video %v (audio %+v after video)",
		a2.Round(time.Microsecond), v2.Round(time.Microsecond), (a2 - v2).Round(time.Microsecond))
}

// TestTranscodeOpusToPCMA: a viewer whose offer has only PCMA (a SIP
// gateway's) of a stream published with Opus gets the derived PCMA
// track: the source's tone at its level, in sync with the video by the
// sender reports; the transcoder is counted as opus→pcma while it runs.
func TestTranscodeOpusToPCMA(t *testing.T) {
	needTranscode(t)
	srv := startEdgeServer(t, func(c *config.Config) { c.Transcode.IdleClose = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	src := startHubSource(ctx, t, srv.Hub(), "opus", opusMono, true)
	defer func() { cancel(); <-src.done }()
	<-src.st.Ready()
	const running = `sluice_transcoders{from="opus",to="pcma"}`
	seen := &audioSeen{}
	v, err := client.View(ctx, srv.base+"/whep/opus", client.ViewOptions{OnRTP: seen.onRTP, OnRTCP: seen.onRTCP,
		VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)},
		AudioCodecs: []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000}, PayloadType: 8}}})
	if err != nil {
		t.Fatal(err)
	}
	go drain(v)
	for {
		seen.mu.Lock()
		n, srs := len(seen.pkts), len(seen.srs)
		seen.mu.Unlock()
		if n >= 150 && srs == 2 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d audio packets, sender reports of %d tracks", n, srs)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if s := scrapeMetrics(t, srv.base); s.get(running) != 1 {
		t.Errorf("%s = %v with a viewer, want 1", running, s.get(running))
	}
	_ = v.Close()
	if seen.pt != 8 {
		t.Fatalf("audio payload type %d, want PCMA (8)", seen.pt)
	}
	checkTone(t, seen, src, 1, 8000, true, 5*time.Millisecond)
	waitMetrics(t, srv.base, "the transcoder stopped after its viewer", func(s metricSamples) bool { return s.get(running) == 0 })
}
