package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
	"github.com/sluice-media/sluice/internal/config"
)

// lossyConn impairs the RTP on one UDP socket, deterministically: a seeded
// generator drops a fraction of the RTP packets sent and received, and
// holds back a fraction of those sent until the next one has gone
// (reordering). STUN, DTLS and RTCP pass untouched, so that only media is
// lost (RFC 5761 §4 tells RTP from RTCP by the payload type byte).
type lossyConn struct {
	net.PacketConn
	sendLoss, recvLoss, reorder float64

	mu       sync.Mutex
	rng      *rand.Rand
	held     []byte
	heldAddr net.Addr

	sent, dropped, reordered atomic.Int64
}

func newLossy(seed uint64, sendLoss, recvLoss, reorder float64) *lossyConn {
	return &lossyConn{sendLoss: sendLoss, recvLoss: recvLoss, reorder: reorder, rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// wrap is a client.WrapConn.
func (c *lossyConn) wrap(pc net.PacketConn) net.PacketConn {
	c.PacketConn = pc
	return c
}

func isRTP(b []byte) bool {
	if len(b) < 12 || b[0]&0xc0 != 0x80 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95 // 64..95 would be RTCP 192..223
}

func (c *lossyConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !isRTP(b) {
		return c.PacketConn.WriteTo(b, addr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sent.Add(1)
	if c.rng.Float64() < c.sendLoss {
		c.dropped.Add(1)
		return len(b), nil
	}
	if c.held != nil {
		// This one overtakes the packet held back.
		n, err := c.PacketConn.WriteTo(b, addr)
		_, _ = c.PacketConn.WriteTo(c.held, c.heldAddr)
		c.held = nil
		return n, err
	}
	if c.rng.Float64() < c.reorder {
		c.held, c.heldAddr = slices.Clone(b), addr
		c.reordered.Add(1)
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(b)
		if err != nil || !isRTP(b[:n]) {
			return n, addr, err
		}
		c.mu.Lock()
		drop := c.rng.Float64() < c.recvLoss
		c.mu.Unlock()
		if !drop {
			return n, addr, err
		}
		c.dropped.Add(1)
	}
}

// completeShare returns the share of the access units sent from the
// viewer's first one on that it received whole, in order, and how many
// that was. got must be a subsequence of sent.
func completeShare(sent, got [][][]byte) (share float64, matched, expected int) {
	i := 0
	first := -1
	for _, au := range got {
		for i < len(sent) && !equalAU(sent[i], au) {
			i++
		}
		if i == len(sent) {
			break
		}
		if first < 0 {
			first = i
		}
		matched++
		i++
	}
	if first < 0 {
		return 0, 0, len(sent)
	}
	expected = len(sent) - first
	return float64(matched) / float64(expected), matched, expected
}

// collectAUs reads a viewer's access units until it has one that is
// sent[until] or later (or 10 s passed).
func collectAUs(v *client.Viewer, sent [][][]byte, until int) [][][]byte {
	var got [][][]byte
	deadline := time.After(10 * time.Second)
	for {
		select {
		case au := <-v.AccessUnits():
			got = append(got, au.NALUs)
			if endsAt(sent, got) >= until {
				return got
			}
		case <-v.OpusPackets():
		case <-deadline:
			return got
		}
	}
}

// endsAt matches got as a subsequence of sent and returns the index in
// sent of its last element, or -1.
func endsAt(sent, got [][][]byte) int {
	i := -1
	for _, au := range got {
		for i++; i < len(sent) && !equalAU(sent[i], au); i++ {
		}
		if i == len(sent) {
			return -1
		}
	}
	return i
}

// TestPublisherLossRecovered sends the clip twice with 5 % of the
// publisher's RTP lost on its way to sluice and 3 % reordered. Sluice's
// reorder window puts the packets back in order and NACKs the gaps; the
// publisher's NACK responder retransmits, on the media SSRC or (with RTX
// negotiated) on its RTX SSRC, which pion decodes back into the original
// packet before the window. A viewer must get at least 99 % of the access
// units whole.
func TestPublisherLossRecovered(t *testing.T) {
	for _, rtx := range []bool{false, true} {
		t.Run(fmt.Sprintf("rtx=%v", rtx), func(t *testing.T) {
			t.Parallel()
			clip := loadClip(t)
			base := startServer(t, func(c *config.Config) { c.WebRTC.DetachPublishers = true })
			ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
			defer cancel()

			lossy := newLossy(42, 0.05, 0, 0.03)
			pub, err := client.Publish(ctx, base+"/whip/lossy", client.PublishOptions{WrapConn: lossy.wrap, RTX: rtx})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			// Two passes are judged; the feed goes on for one more
			// second so that losses at their end can be repaired too.
			f := newFeed(pub, clip, 2*len(clip)+25)
			f.pad = 4000 // about four packets per access unit
			fctx, stop := context.WithCancel(ctx)
			defer func() { stop(); <-f.done }()
			go f.run(fctx)
			<-f.sentAU(1)

			v, err := client.View(ctx, base+"/whep/lossy", client.ViewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			// The losses are repaired on the detached path: sluice reads
			// the publisher's SRTP (and RTX) and sends its NACKs.
			if s := publisherSession(t, base, "direct"); s.RTPPath != "direct" {
				t.Errorf("publisher session %+v, want it on the direct path", s)
			}
			<-f.done
			sent, _, err := f.result()
			if err != nil {
				t.Fatal(err)
			}
			got := collectAUs(v, sent, 2*len(clip)+10)
			share, matched, expected := completeShare(sent[:2*len(clip)], got)
			t.Logf("publisher sent %d RTP packets, %d dropped, %d reordered; server NACKed %d packets; viewer got %d of %d access units whole (%.1f %%), stats %+v",
				lossy.sent.Load(), lossy.dropped.Load(), lossy.reordered.Load(), pub.NACKedPackets(), matched, expected, 100*share, v.Stats())
			if lossy.dropped.Load() == 0 || pub.NACKedPackets() == 0 {
				t.Fatal("no loss, or no NACKs: the test tests nothing")
			}
			if share < 0.99 {
				t.Errorf("viewer got %.1f %% of the access units whole, want at least 99 %%", 100*share)
			}
		})
	}
}

// TestViewerLossRecovered drops 5 % of the RTP on the viewer's side. The
// viewer NACKs the gaps and sluice answers from the stream's ring (one
// cache for all viewers): as RTX when the viewer offers it (pion's default
// codecs), else on the media SSRC. With a reorder window in the viewer, at
// least 99 % of the access units must arrive whole.
func TestViewerLossRecovered(t *testing.T) {
	for _, name := range []string{"rtx", "plain"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			clip := loadClip(t)
			base := startServer(t, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 40*time.Second)
			defer cancel()
			pub, err := client.Publish(ctx, base+"/whip/vloss", client.PublishOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			// Two passes are judged; the feed goes on for one more
			// second so that losses at their end can be repaired too.
			f := newFeed(pub, clip, 2*len(clip)+25)
			f.pad = 4000 // about four packets per access unit
			fctx, stop := context.WithCancel(ctx)
			defer func() { stop(); <-f.done }()
			go f.run(fctx)
			<-f.sentAU(1)

			lossy := newLossy(7, 0, 0.05, 0)
			opts := client.ViewOptions{WrapConn: lossy.wrap, Reorder: 300 * time.Millisecond}
			if name == "plain" {
				opts.VideoCodecs = []webrtc.RTPCodecParameters{client.H264Codec("42e01f", 1)}
			}
			v, err := client.View(ctx, base+"/whep/vloss", opts)
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			<-f.done
			sent, _, err := f.result()
			if err != nil {
				t.Fatal(err)
			}
			got := collectAUs(v, sent, 2*len(clip)+10)
			share, matched, expected := completeShare(sent[:2*len(clip)], got)
			t.Logf("viewer dropped %d RTP packets; got %d of %d access units whole (%.1f %%), stats %+v",
				lossy.dropped.Load(), matched, expected, 100*share, v.Stats())
			if lossy.dropped.Load() == 0 {
				t.Fatal("no loss: the test tests nothing")
			}
			if share < 0.99 {
				t.Errorf("viewer got %.1f %% of the access units whole, want at least 99 %%", 100*share)
			}
		})
	}
}
