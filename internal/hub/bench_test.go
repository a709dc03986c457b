package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluice-media/sluice/internal/media"
)

// BenchmarkHubFanout measures the hub's cost per delivered packet: one writer,
// N cursors, each cursor reading every packet. One op is one packet delivered
// to one cursor. The writer pauses every half ring so no cursor laps; the
// packets are preallocated (ingest owns that cost), so what remains is the
// ring, the cursors and the wake-ups.
func BenchmarkHubFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("cursors=%d", n), func(b *testing.B) {
			const ringSize = 4096
			h := New(Config{RingPackets: ringSize, PLIMinInterval: time.Second, MaxViewersPerStream: n})
			s, _ := h.Publish("bench", &fakePub{}, []media.Codec{opus})
			s.AddTrack(opus) // audio: no keyframe logic, every packet delivered
			pkts := make([]Packet, ringSize)
			payload := make([]byte, 1200)

			ctx := context.Background()
			batch := ringSize / 2
			total := max(b.N/n, 1)
			var wg sync.WaitGroup
			start := make([]chan int, n)
			for i := range n {
				c, err := s.Join()
				if err != nil {
					b.Fatal(err)
				}
				start[i] = make(chan int, 1)
				go func(c *Cursor, start chan int) {
					for k := range start {
						for range k {
							if _, _, err := c.Next(ctx); err != nil {
								panic(err)
							}
						}
						wg.Done()
					}
					c.Close()
				}(c, start[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for written := 0; written < total; {
				k := min(batch, total-written)
				wg.Add(n)
				for _, ch := range start {
					ch <- k
				}
				for j := range k {
					p := &pkts[(written+j)%ringSize]
					*p = Packet{Track: 0, SequenceNumber: uint16(written + j), Payload: payload}
					s.Write(p)
				}
				wg.Wait()
				written += k
			}
			b.StopTimer()
			for _, ch := range start {
				close(ch)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total*n), "ns/delivered")
		})
	}
}
