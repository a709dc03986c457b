package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/sluice-media/sluice/internal/client"
)

// TestG711Passthrough: a WHIP publisher sending PCMU or PCMA (a camera, a
// SIP gateway) is played by a WHEP viewer that offers the browsers' audio
// list (Opus first, then G.711): the answer takes G.711 and the payloads
// arrive as sent.
func TestG711Passthrough(t *testing.T) {
	base := startServer(t, nil)
	for _, mime := range []string{webrtc.MimeTypePCMU, webrtc.MimeTypePCMA} {
		t.Run(mime, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			stream := "g711-" + strings.ToLower(strings.TrimPrefix(mime, "audio/"))
			pub, err := client.Publish(ctx, base+"/whip/"+stream, client.PublishOptions{NoVideo: true, AudioCodec: mime})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()
			// 20 ms of 8 kHz G.711: 160 bytes, numbered so that each can be
			// recognised.
			payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 160) }
			feedCtx, stop := context.WithCancel(ctx)
			fed := make(chan struct{})
			go func() {
				defer close(fed)
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < 500; i++ {
					if err := pub.WriteOpus(payload(i), time.Duration(i)*20*time.Millisecond); err != nil {
						return
					}
					select {
					case <-feedCtx.Done():
						return
					case <-tick.C:
					}
				}
			}()
			defer func() { stop(); <-fed }()

			v, err := client.View(ctx, base+"/whep/"+stream, client.ViewOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer v.Close()
			got := 0
			deadline := time.After(5 * time.Second)
			for got < 5 {
				select {
				case p := <-v.OpusPackets():
					if len(p.Payload) != 160 || !bytes.Equal(p.Payload, payload(int(p.Payload[0]))) {
						t.Fatalf("payload %x... of %d bytes is not one that was sent", p.Payload[:min(8, len(p.Payload))], len(p.Payload))
					}
					got++
				case <-deadline:
					t.Fatalf("%d packets within 5 s", got)
				}
			}
			c, ok := v.AudioCodec()
			if !ok || !strings.EqualFold(c.MimeType, mime) || c.ClockRate != 8000 {
				t.Errorf("viewer negotiated %v, want %s/8000", c.RTPCodecCapability, mime)
			}
		})
	}
}
