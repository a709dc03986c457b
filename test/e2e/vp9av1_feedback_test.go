package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpav1"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp9"
	mcav1 "github.com/bluenviron/mediacommon/v2/pkg/codecs/av1"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/codec"
)

// feedbackCase is a codec the keyframe-request and loss tests publish with
// the test client: the clip's frames as written, the writer, a depacketizer
// (one frame per call, nil while it needs more packets) and the keyframe
// test of a first packet.
type feedbackCase struct {
	name   string
	frames [][]byte
	set    func(*client.PublishOptions)
	write  func(p *client.Publisher, f []byte, pts time.Duration) error
	decode func() func(*rtp.Packet) []byte
	key    func([]byte) bool
}

func feedbackCases(t *testing.T) []feedbackCase {
	av1Frames := make([][]byte, 0, 75)
	for _, tu := range av1Clip(t) {
		b, err := mcav1.Bitstream(tu).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		av1Frames = append(av1Frames, b)
	}
	return []feedbackCase{{
		name: "VP9", frames: vp9Clip(t),
		set:   func(o *client.PublishOptions) { o.VP9 = true },
		write: (*client.Publisher).WriteVP9,
		decode: func() func(*rtp.Packet) []byte {
			d := &rtpvp9.Decoder{}
			_ = d.Init()
			return func(p *rtp.Packet) []byte { f, _ := d.Decode(p); return f }
		},
		key: codec.VP9Keyframe,
	}, {
		name: "AV1", frames: av1Frames,
		set:   func(o *client.PublishOptions) { o.AV1 = true },
		write: (*client.Publisher).WriteAV1,
		decode: func() func(*rtp.Packet) []byte {
			d := &rtpav1.Decoder{}
			_ = d.Init()
			return func(p *rtp.Packet) []byte {
				tu, err := d.Decode(p)
				if err != nil {
					return nil
				}
				b, _ := mcav1.Bitstream(tu).Marshal()
				return b
			}
		},
		key: codec.AV1Keyframe,
	}}
}

// roundTrip is what a viewer rebuilds of frame f: pion's payloader (the
// test client's) and the case's depacketizer, without sluice between.
func (c feedbackCase) roundTrip(t *testing.T, f []byte) []byte {
	var pay interface {
		Payload(uint16, []byte) [][]byte
	} = &codecs.VP9Payloader{}
	if c.name == "AV1" {
		pay = &codecs.AV1Payloader{}
	}
	dec := c.decode()
	pls := pay.Payload(1200, f)
	for i, pl := range pls {
		if out := dec(&rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Marker: i == len(pls)-1}, Payload: pl}); out != nil {
			return out
		}
	}
	t.Fatal("a clip frame does not survive packetizing")
	return nil
}

// feedbackViewer views url and hands out the frames it receives, rebuilt
// from the packets as they arrive, and its first video packet.
func feedbackViewer(t *testing.T, ctx context.Context, url string, c feedbackCase) (*client.Viewer, <-chan []byte, <-chan *rtp.Packet) {
	t.Helper()
	frames := make(chan []byte, 1024)
	first := make(chan *rtp.Packet, 1)
	dec := c.decode()
	v, err := client.View(ctx, url, client.ViewOptions{OnRTP: func(kind webrtc.RTPCodecType, p *rtp.Packet) {
		if kind != webrtc.RTPCodecTypeVideo {
			return
		}
		select {
		case first <- p.Clone():
		default:
		}
		// The depacketizers keep fragments until the frame is whole,
		// and the viewer reuses the packet's buffer.
		if f := dec(p.Clone()); f != nil {
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

// publishClip publishes the case's clip with the test client, from frame 0
// on, n frames at 25 fps. sent stops the feed and returns the frames sent,
// in order; last is closed once the n-th is.
func publishClip(t *testing.T, ctx context.Context, url string, c feedbackCase, opts client.PublishOptions, n int) (pub *client.Publisher, last <-chan struct{}, sent func() [][]byte) {
	t.Helper()
	c.set(&opts)
	opts.NoAudio = true
	pub, err := client.Publish(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close() })
	var frames [][]byte
	done := make(chan struct{})
	stop := feedFrames(ctx, n, func(i int) ([]*rtp.Packet, error) {
		f := c.frames[i%len(c.frames)]
		frames = append(frames, f)
		err := c.write(pub, f, time.Duration(i)*frameDuration)
		if i == n-1 {
			close(done)
		}
		return nil, err
	}, func(*rtp.Packet) error { return nil }, t.Error)
	return pub, done, func() [][]byte { stop(); return frames }
}

// TestViewerPLIForwardedVP9AV1: a VP9 (AV1) viewer starts at a key frame
// of the GOP cache, and its PLI reaches the publisher (RFC 4585 §6.3.1).
func TestViewerPLIForwardedVP9AV1(t *testing.T) {
	const interval = time.Second // config default stream.pli_min_interval
	for _, c := range feedbackCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			base := startServer(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			pub, _, stop := publishClip(t, ctx, base+"/whip/pli", c, client.PublishOptions{}, 500)
			defer stop()
			v, frames, first := feedbackViewer(t, ctx, base+"/whep/pli", c)
			select {
			case p := <-first:
				if !c.key(p.Payload) {
					t.Errorf("the viewer's first video packet is no key frame start: % x", p.Payload[:min(len(p.Payload), 8)])
				}
			case <-ctx.Done():
				t.Fatal("no video packet")
			}
			select {
			case <-frames:
			case <-ctx.Done():
				t.Fatal("no frame")
			}
			// Let any keyframe request the join caused age out of the
			// rate limiter's window; the wait is the behaviour under test.
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
					t.Fatal("the viewer's PLI did not reach the publisher within 2 s")
				}
			}
		})
	}
}

// TestPublisherLossRecoveredVP9AV1 is TestPublisherLossRecovered in VP9
// and AV1: 5 % of the publisher's RTP lost on its way to sluice and 3 %
// reordered, small packets (several per frame); sluice NACKs the gaps,
// the publisher retransmits (on the media SSRC or as RTX), and a viewer
// must get at least 99 % of the frames whole.
func TestPublisherLossRecoveredVP9AV1(t *testing.T) {
	for _, c := range feedbackCases(t) {
		want := make([][][]byte, len(c.frames)) // what the viewer rebuilds of each
		for i, f := range c.frames {
			want[i] = [][]byte{c.roundTrip(t, f)}
		}
		for _, rtx := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/rtx=%v", c.name, rtx), func(t *testing.T) {
				t.Parallel()
				const n = 2*75 + 25 // two passes judged, one more second to repair their end
				base := startServer(t, nil)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				lossy := newLossy(42, 0.05, 0, 0.03)
				pub, last, result := publishClip(t, ctx, base+"/whip/lossy", c, client.PublishOptions{WrapConn: lossy.wrap, RTX: rtx, MTU: 300}, n)
				_, frames, _ := feedbackViewer(t, ctx, base+"/whep/lossy", c)
				select {
				case <-last:
				case <-ctx.Done():
					t.Fatal("feed unfinished")
				}
				if len(result()) != n {
					t.Fatal("not every frame was sent")
				}
				sent := make([][][]byte, n)
				for i := range sent {
					sent[i] = want[i%len(want)]
				}
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
				if share < 0.99 || expected < 100 {
					t.Errorf("viewer got %d of %d frames whole (%.1f %%), want at least 99 %% of 100 or more", matched, expected, 100*share)
				}
			})
		}
	}
}
