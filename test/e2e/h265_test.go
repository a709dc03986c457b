package e2e

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/media"
)

// h265ClipPath is the H265 twin of the H264 clip; testdata/README.md says
// how it was made.
const h265ClipPath = "../../testdata/h265_main_320x240_25fps_3s.h265"

// TestRelayH265 publishes the H265 clip from a pion publisher; a viewer
// that offers H265 gets every access unit unchanged, starting at an IRAP
// picture, and the stream's info says Main, 320x240. A viewer that offers
// only H264 is refused.
func TestRelayH265(t *testing.T) {
	clip := loadH265Clip(t)
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, err := client.Publish(ctx, srv.base+"/whip/hevc", client.PublishOptions{H265: true, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()

	// Send the clip twice at real-time pace.
	sentAll := make(chan [][][]byte, 1)
	first := make(chan struct{})
	go func() {
		var sent [][][]byte
		start := time.Now()
		for i := range 2 * len(clip) {
			au := clip[i%len(clip)]
			if err := pub.WriteH265(au, time.Duration(i)*frameDuration); err != nil {
				t.Error(err)
				break
			}
			sent = append(sent, au)
			if i == 0 {
				close(first)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(start.Add(time.Duration(i+1) * frameDuration))):
			}
		}
		sentAll <- sent
	}()
	<-first

	v, err := client.View(ctx, srv.base+"/whep/hevc", client.ViewOptions{VideoCodecs: []webrtc.RTPCodecParameters{client.H265Codec()}, NoAudio: true})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if c, ok := v.VideoCodec(); ok && c.MimeType != webrtc.MimeTypeH265 {
		t.Errorf("viewer negotiated %s", c.MimeType)
	}
	_, err = client.View(ctx, srv.base+"/whep/hevc", client.ViewOptions{VideoCodecs: []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}, NoAudio: true})
	if client.StatusOf(err) != http.StatusNotAcceptable {
		t.Errorf("H264-only viewer: %v, want 406", err)
	}

	sent := <-sentAll
	got := collectAUs(v, sent, len(sent)-1)
	if len(got) == 0 {
		t.Fatal("no access units")
	}
	if !client.IsIRAP(got[0]) {
		t.Error("the first access unit is not an IRAP picture")
	}
	start := matchStart(sent, got)
	if start < 0 || start+len(got) != len(sent) {
		t.Errorf("received %d access units, not the run of sent ones up to the last (start %d)", len(got), start)
	}
	if st := v.Stats(); st.VideoGaps != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("viewer got access units %d..%d of %d", start, start+len(got)-1, len(sent))

	st, err := srv.Hub().Lookup("hevc")
	if err != nil {
		t.Fatal(err)
	}
	info, ok := st.VideoInfo(0)
	if want := (media.VideoInfo{Width: 320, Height: 240, Profile: "Main", Level: "2"}); !ok || info != want {
		t.Errorf("stream info %+v %v, want %+v", info, ok, want)
	}
}

// TestFIRWhenPublisherPrefersIt: a publisher that offers "ccm fir" but not
// "nack pli" gets its keyframe requests as FIR (RFC 5104 §4.3.1).
func TestFIRWhenPublisherPrefersIt(t *testing.T) {
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "ccm", Parameter: "fir"}}
	pub, err := client.Publish(ctx, base+"/whip/fir", client.PublishOptions{VideoFeedback: fb})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	f := newFeed(pub, loadClip(t), 0)
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	// The video track's arrival asks for a keyframe at once.
	select {
	case <-pub.KeyframeRequested():
	case <-ctx.Done():
		t.Fatal("no keyframe request")
	}
	if k, fir := pub.KeyframeRequests(), pub.FIRRequests(); fir == 0 || fir != k {
		t.Errorf("%d keyframe requests, %d of them FIR; want all FIR", k, fir)
	}
}

// loadH265Clip returns the committed H265 clip's access units.
func loadH265Clip(t testing.TB) [][][]byte {
	t.Helper()
	f, err := os.Open(h265ClipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	clip, err := client.ReadH265AccessUnits(f)
	if err != nil {
		t.Fatal(err)
	}
	return clip
}
