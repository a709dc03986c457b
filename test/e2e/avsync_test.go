package e2e

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/frame"
	"github.com/sluice-media/sluice/internal/hub"
	"github.com/sluice-media/sluice/internal/media"
)

// TestAVSyncFromSenderReports publishes audio and video whose RTP clocks
// start at unrelated random values, with sender reports that say the audio
// was captured 300 ms later than video with the same presentation time (a
// known offset, e.g. a microphone path with a delay). Both are sent at the
// same moment, so arrival times say nothing about the offset: only the
// sender reports do. Frames rebuilt from the stream's ring by the frame
// package must carry wall-clock times that agree with the stated timing
// within 20 ms.
func TestAVSyncFromSenderReports(t *testing.T) {
	const offset = 300 * time.Millisecond
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, t0, reports := publishOffsetReports(ctx, t, srv.base+"/whip/av", offset)
	reports(0)
	f := newFeed(pub, loadClip(t), 50) // 2 s
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	// The cursor may join while access unit 0 is still arriving.
	<-f.sentAU(1)
	reports(0) // again, now that the tracks exist

	st, err := srv.Hub().Lookup("av")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-st.Ready():
	case <-ctx.Done():
		t.Fatal("stream not ready")
	}
	cur, err := st.Join()
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	cur.OwnPackets() // the depacketizers keep payload slices across packets
	deps := map[int]frame.Depacketizer{}
	kinds := map[int]media.Kind{}
	for _, tr := range st.Tracks() {
		if tr.Derived {
			continue // transcoded (Opus's AAC, G.711), written only on demand
		}
		d, err := frame.ForTrack(st, tr)
		if err != nil {
			t.Fatal(err)
		}
		deps[tr.Index] = d
		kinds[tr.Index] = tr.Codec.Kind()
	}

	// Video: the first frame the cursor gives is access unit 0 (the
	// first keyframe, cached), at presentation time 0; later ones follow
	// at their RTP timestamp distance. Audio carries its index.
	var videoErr, audioErr []time.Duration
	var firstVideo *media.Frame
	noWall := 0
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
	defer rcancel()
	for len(videoErr) < 40 || len(audioErr) < 80 {
		p, _, err := cur.Next(rctx)
		if errors.Is(err, hub.ErrEnded) || errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		d, ok := deps[p.Track]
		if !ok {
			continue // a derived track a consumer started (LL-HLS's AAC)
		}
		fr, ok := d.Push(p)
		if !ok {
			continue
		}
		if kinds[p.Track] == media.KindVideo && firstVideo == nil {
			firstVideo = fr
			if !fr.Keyframe {
				t.Fatal("the first video frame is not a keyframe")
			}
		}
		if fr.Wall.IsZero() {
			// The sender reports are read on another goroutine than
			// the media: the very first frames may come before them.
			if noWall++; noWall > 10 {
				t.Fatalf("%d frames without wall-clock time", noWall)
			}
			continue
		}
		switch kinds[p.Track] {
		case media.KindVideo:
			pts := time.Duration(fr.RTPTimestamp-firstVideo.RTPTimestamp) * time.Second / 90000
			videoErr = append(videoErr, fr.Wall.Sub(t0.Add(pts)))
		case media.KindAudio:
			n, ok := client.OpusTestIndex(fr.Payload)
			if !ok {
				t.Fatalf("Opus payload %x changed", fr.Payload)
			}
			pts := time.Duration(n) * client.OpusFrameDuration
			audioErr = append(audioErr, fr.Wall.Sub(t0.Add(pts+offset)))
		}
	}
	if len(videoErr) < 40 || len(audioErr) < 80 {
		t.Fatalf("got %d video and %d audio frames", len(videoErr), len(audioErr))
	}
	worst := func(errs []time.Duration) time.Duration {
		var w time.Duration
		for _, e := range errs {
			if math.Abs(float64(e)) > math.Abs(float64(w)) {
				w = e
			}
		}
		return w
	}
	wv, wa := worst(videoErr), worst(audioErr)
	t.Logf("%d video and %d audio frames; worst wall-clock error: video %v, audio %v", len(videoErr), len(audioErr), wv, wa)
	if wv.Abs() > 20*time.Millisecond || wa.Abs() > 20*time.Millisecond {
		t.Errorf("frame times off by up to %v (video) and %v (audio), want within 20 ms", wv, wa)
	}
}

// TestViewerSenderReports checks the RTCP sender reports a WHEP viewer
// gets: the publisher's reports say its audio was captured 300 ms after
// the video with the same presentation time, and the viewer's reports,
// though in the viewer's own SSRCs and timestamps, must say the same, so a
// player lines them up as the publisher meant (within 20 ms). Reports
// made up from send times, as a stock RTCP sender would, miss by 300 ms.
func TestViewerSenderReports(t *testing.T) {
	const offset = 300 * time.Millisecond
	srv := startEdgeServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	pub, _, reports := publishOffsetReports(ctx, t, srv.base+"/whip/avsr", offset)
	clip := loadClip(t)
	f := newFeed(pub, clip, len(clip)) // 3 s
	fctx, stop := context.WithCancel(ctx)
	defer func() { stop(); <-f.done }()
	go f.run(fctx)
	<-f.sentAU(1)
	reports(0)

	var mu sync.Mutex
	srs := map[webrtc.RTPCodecType]*rtcp.SenderReport{}
	v, err := client.View(ctx, srv.base+"/whep/avsr", client.ViewOptions{
		OnRTCP: func(kind webrtc.RTPCodecType, pkts []rtcp.Packet) {
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					mu.Lock()
					srs[kind] = sr
					mu.Unlock()
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	var aus [][][]byte
	var firstVideoTS uint32
	var opus *client.OpusPacket
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for {
		mu.Lock()
		haveSRs := srs[webrtc.RTPCodecTypeVideo] != nil && srs[webrtc.RTPCodecTypeAudio] != nil
		mu.Unlock()
		if haveSRs && len(aus) >= 5 && opus != nil {
			break
		}
		select {
		case au := <-v.AccessUnits():
			if len(aus) == 0 {
				firstVideoTS = au.RTPTimestamp
			}
			if len(aus) < 5 {
				aus = append(aus, au.NALUs)
			}
		case p := <-v.OpusPackets():
			if opus == nil {
				opus = &p
			}
		case <-time.After(100 * time.Millisecond):
		case <-rctx.Done():
			t.Fatalf("after 10 s: %d access units, Opus %v, sender reports %v", len(aus), opus != nil, srs)
		}
	}
	k := matchStart(clip, aus)
	if k < 0 {
		t.Fatal("the access units received are not consecutive ones of the clip")
	}
	n, ok := client.OpusTestIndex(opus.Payload)
	if !ok {
		t.Fatalf("Opus payload %x changed", opus.Payload)
	}
	mu.Lock()
	srV, srA := *srs[webrtc.RTPCodecTypeVideo], *srs[webrtc.RTPCodecTypeAudio]
	mu.Unlock()
	wall := func(sr rtcp.SenderReport, ts uint32, rate int64) time.Time {
		d := int64(int32(ts - sr.RTPTime))
		return media.NTPTime(sr.NTPTime).Add(time.Duration(d * int64(time.Second) / rate))
	}
	// Access unit k was presented at k×40 ms, captured at t0 plus that;
	// Opus packet n at n×20 ms, captured at t0 plus that plus offset.
	got := wall(srV, firstVideoTS, 90000).Sub(wall(srA, opus.RTPTimestamp, 48000))
	want := time.Duration(k)*2*client.OpusFrameDuration - (time.Duration(n)*client.OpusFrameDuration + offset)
	t.Logf("video AU %d, Opus packet %d: viewer's reports put them %v apart, the publisher's %v", k, n, got, want)
	if (got - want).Abs() > 20*time.Millisecond {
		t.Errorf("the viewer's sender reports put video AU %d and Opus packet %d %v apart; the publisher's say %v", k, n, got, want)
	}
}

// publishOffsetReports publishes to url without pion's own sender reports;
// reports(pts) sends the publisher's: video with presentation time pts was
// captured at t0+pts, audio with the same presentation time offset later.
// The publisher is closed when the test ends.
func publishOffsetReports(ctx context.Context, t *testing.T, url string, offset time.Duration) (pub *client.Publisher, t0 time.Time, reports func(pts time.Duration)) {
	t.Helper()
	pub, err := client.Publish(ctx, url, client.PublishOptions{NoSenderReports: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pub.Close() })
	t0 = time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	return pub, t0, func(pts time.Duration) {
		if err := pub.WriteSenderReport(true, t0.Add(pts), pts); err != nil {
			t.Error(err)
		}
		if err := pub.WriteSenderReport(false, t0.Add(pts+offset), pts); err != nil {
			t.Error(err)
		}
	}
}
