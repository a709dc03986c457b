package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/codec"
)

// vp9Viewer views url and hands out the VP9 frames it receives, rebuilt
// with gortsplib's depacketizer from the packets as they arrive.
func vp9Viewer(t *testing.T, ctx context.Context, url string) (*client.Viewer, <-chan []byte, <-chan *rtp.Packet) {
	t.Helper()
	frames := make(chan []byte, 1024)
	first := make(chan *rtp.Packet, 1)
	dec := &rtpvp9.Decoder{}
	_ = dec.Init()
	v, err := client.View(ctx, url, client.ViewOptions{OnRTP: func(kind webrtc.RTPCodecType, p *rtp.Packet) {
		if kind != webrtc.RTPCodecTypeVideo {
			return
		}
		select {
		case first <- p.Clone():
		default:
		}
		// The decoder keeps fragments until the frame is whole, and the
		// viewer reuses the packet's buffer.
		if f, err := dec.Decode(p.Clone()); err == nil {
			select {
			case frames <- bytes.Clone(f):
			default:
			}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v, frames, first
}

// publishVP9 publishes the VP9 clip with the test client, from frame 0 on,
// n frames at 25 fps. sent stops the feed and returns the frames sent, in
// order; last is closed once the n-th is.
func publishVP9(t *testing.T, ctx context.Context, url string, opts client.PublishOptions, n int) (pub *client.Publisher, last <-chan struct{}, sent func() [][][]byte) {
	t.Helper()
	clip := vp9Clip(t)
	opts.VP9, opts.NoAudio = true, true
	pub, err := client.Publish(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	var frames [][][]byte
	done := make(chan struct{})
	stop := feedFrames(ctx, n, func(i int) ([]*rtp.Packet, error) {
		f := clip[i%len(clip)]
		frames = append(frames, [][]byte{f})
		err := pub.WriteVP9(f, time.Duration(i)*frameDuration)
		if i == n-1 {
			close(done)
		}
		return nil, err
	}, func(*rtp.Packet) error { return nil }, t.Error)
	return pub, done, func() [][][]byte { stop(); return frames }
}

// TestViewerPLIForwardedVP9: a VP9 viewer starts at a key frame of the
// GOP cache, and its PLI reaches the VP9 publisher (RFC 4585 §6.3.1).
func TestViewerPLIForwardedVP9(t *testing.T) {
	const interval = time.Second // config default stream.pli_min_interval
	base := startServer(t, nil)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	pub, _, stop := publishVP9(t, ctx, base+"/whip/vp9pli", client.PublishOptions{}, 500)
	defer stop()
	time.Sleep(300 * time.Millisecond) // a few frames into the first GOP, so the join has one to start at
	v, frames, first := vp9Viewer(t, ctx, base+"/whep/vp9pli")
	select {
	case p := <-first:
		if !codec.VP9Keyframe(p.Payload) {
			t.Errorf("the viewer's first video packet is no VP9 key frame start: % x", p.Payload[:min(len(p.Payload), 8)])
		}
	case <-ctx.Done():
		t.Fatal("no video packet")
	}
	select {
	case <-frames:
	case <-ctx.Done():
		t.Fatal("no VP9 frame")
	}
	// Let any keyframe request the join caused age out of the rate
	// limiter's window; the wait is the behaviour under test.
	time.Sleep(interval + 200*time.Millisecond)
	before := pub.KeyframeRequests()
	if err := v.SendPLI(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(2 * time.Second)
	for pub.KeyframeRequests() == before {
		select {
		case <-pub.KeyframeRequested():
		case <-deadline:
			t.Fatal("the viewer's PLI did not reach the VP9 publisher within 2 s")
		}
	}
}

// TestPublisherLossRecoveredVP9 is TestPublisherLossRecovered in VP9: 5 %
// of the publisher's RTP lost on its way to sluice and 3 % reordered,
// small packets (about three per frame); sluice NACKs the gaps, the
// publisher retransmits (on the media SSRC or as RTX), and a viewer must
// get at least 99 % of the frames whole.
func TestPublisherLossRecoveredVP9(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		t.Run(fmt.Sprintf("rtx=%v", rtx), func(t *testing.T) {
			t.Parallel()
			const n = 2*75 + 25 // two passes judged, one more second to repair their end
			base := startServer(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			lossy := newLossy(42, 0.05, 0, 0.03)
			pub, last, result := publishVP9(t, ctx, base+"/whip/vp9lossy", client.PublishOptions{WrapConn: lossy.wrap, RTX: rtx, MTU: 300}, n)
			time.Sleep(100 * time.Millisecond) // the first key frame in the cache
			_, frames, _ := vp9Viewer(t, ctx, base+"/whep/vp9lossy")
			select {
			case <-last:
			case <-ctx.Done():
				t.Fatal("feed unfinished")
			}
			sent := result()
			// Frames up to 10 after the two passes judged, or 5 s.
			var got [][][]byte
			deadline := time.After(5 * time.Second)
		collect:
			for endsAt(sent, got) < 2*75+10 {
				select {
				case f := <-frames:
					got = append(got, [][]byte{f})
				case <-deadline:
					break collect
				}
			}
			share, matched, expected := completeShare(sent[:2*75], got)
			t.Logf("publisher sent %d RTP packets, %d dropped, %d reordered; server NACKed %d packets; viewer got %d of %d frames whole (%.1f %%)",
				lossy.sent.Load(), lossy.dropped.Load(), lossy.reordered.Load(), pub.NACKedPackets(), matched, expected, 100*share)
			if lossy.dropped.Load() == 0 || pub.NACKedPackets() == 0 {
				t.Fatal("no loss, or no NACKs: the test tests nothing")
			}
			if share < 0.99 {
				t.Errorf("viewer got %.1f %% of the frames whole, want at least 99 %%", 100*share)
			}
		})
	}
}
