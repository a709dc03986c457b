package hls

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"go.uber.org/goleak"

	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/hub/hubtest"
	"github.com/sluice-media/sluice/internal/media"
	"github.com/sluice-media/sluice/internal/tap"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func get(s *Server, stream, file string) (*httptest.ResponseRecorder, error) {
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/hls/"+stream+"/"+file, nil)
	return w, s.Serve(w, r, stream)
}

// TestServerLifecycle: a request starts a stream's muxer and gets the
// playlist once a segment is complete; the muxer stops after CloseAfter
// without requests, starts again on the next one, and stops when the
// stream ends.
func TestServerLifecycle(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second})
	s := New(Config{SegmentDuration: 200 * time.Millisecond, PartDuration: 50 * time.Millisecond,
		CloseAfter: 300 * time.Millisecond, StartTimeout: 5 * time.Second}, h, discard())
	defer s.Close()

	if _, err := get(s, "live", "index.m3u8"); !errors.Is(err, hub.ErrNotFound) {
		t.Fatalf("unpublished stream: %v, want hub.ErrNotFound", err)
	}
	st, stop := hubtest.Loop(t, h, "live", true, false)
	defer stop()
	w, err := get(s, "live", "index.m3u8")
	if err != nil || w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "#EXT-X-STREAM-INF") {
		t.Fatalf("index.m3u8: %v, %d %s", err, w.Code, w.Body)
	}
	if !s.Muxing("live") {
		t.Fatal("not muxing after a request")
	}
	if _, err := get(s, "live", "nope.mp4"); !errors.Is(err, ErrNoFile) {
		t.Errorf("unknown file: %v, want ErrNoFile", err)
	}
	waitFor(t, "idle muxer stopped", func() bool { return !s.Muxing("live") })
	if w, err := get(s, "live", "video1_stream.m3u8"); err != nil || w.Code != http.StatusOK {
		t.Fatalf("media playlist after restart: %v, %d", err, w.Code)
	}
	st.End()
	waitFor(t, "muxer stopped with its stream", func() bool { return !s.Muxing("live") })
	if _, err := get(s, "live", "index.m3u8"); !errors.Is(err, hub.ErrNotFound) {
		t.Errorf("ended stream: %v, want hub.ErrNotFound", err)
	}
}

// TestServerAlways muxes a stream from its publication, without a request.
func TestServerAlways(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second})
	s := New(Config{Always: true, SegmentDuration: 200 * time.Millisecond, PartDuration: 50 * time.Millisecond}, h, discard())
	_, stop := hubtest.Loop(t, h, "always", true, false)
	defer stop()
	waitFor(t, "muxing without a request", func() bool { return s.Muxing("always") })
	s.Close()
	if _, err := get(s, "always", "index.m3u8"); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

// TestServerNotReady: a stream that sends no keyframe gets ErrNotReady
// after StartTimeout, not a request that hangs.
func TestServerNotReady(t *testing.T) {
	h := hub.New(hub.Config{RingPackets: 4096, PLIMinInterval: time.Second})
	s := New(Config{StartTimeout: 200 * time.Millisecond}, h, discard())
	defer s.Close()
	stW, err := h.Publish("dark", hubtest.NopPublisher{}, []media.Codec{hubtest.H264})
	if err != nil {
		t.Fatal(err)
	}
	stW.AddTrack(hubtest.H264)
	defer stW.End()
	if _, err := get(s, "dark", "index.m3u8"); !errors.Is(err, ErrNotReady) {
		t.Fatalf("no keyframe: %v, want ErrNotReady", err)
	}
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkMuxer is the LL-HLS muxing cost per stream, which no number of
// players changes: the committed clip's access units (320x240, 25 fps)
// and the AAC access units of the same time (46.875 per second) written
// into one muxer, with 1 s segments and 200 ms parts. One op is one unit
// written; ns/unit and allocs are per unit.
func BenchmarkMuxer(b *testing.B) {
	clip := hubtest.LoadClip(b)
	cfg := Config{}
	cfg.defaults()
	video := &tap.Track{Codec: tap.H264, ClockRate: 90000}
	audio := &tap.Track{Codec: tap.AAC, ClockRate: 48000,
		AAC: mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 2}}
	mx, err := newMuxer(cfg, video, audio, nil, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer mx.close()
	aac := make([]byte, 340) // 128 kbit/s
	wall := time.Now()
	var n, a int
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		// Video frame n at n×40 ms; audio unit a at a×1024/48000 s: write
		// whichever is earlier, as tap.Reader does.
		vt := int64(n) * 3600
		at := int64(a) * 1024 * 90000 / 48000
		var u *tap.Unit
		if at < vt {
			u = &tap.Unit{Track: audio, PTS: int64(a) * 1024, Key: true, Payload: aac}
			a++
		} else {
			au := clip[n%len(clip)]
			u = &tap.Unit{Track: video, PTS: vt, Key: n%len(clip)%25 == 0, NALUs: au}
			n++
		}
		u.Wall = wall.Add(u.Time())
		if err := mx.write(u); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/unit")
	if mx.errs.Load() != 0 {
		b.Fatalf("%d encode errors", mx.errs.Load())
	}
}
