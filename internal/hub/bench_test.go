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
// source packets are preallocated, and the hub's write copies each into its
// pool (reused memory, pool.go: the copy ingest used to make), so what
// remains is that copy, the ring, the cursors and the wake-ups.
func BenchmarkHubFanout(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprintf("cursors=%d", n), func(b *testing.B) {
			const ringSize = 4096
			h := New(Config{RingPackets: ringSize, PLIMinInterval: time.Second, MaxViewersPerStream: n})
			sW, _ := h.Publish("bench", &fakePub{}, []media.Codec{opus})
			s := sW.Stream()
			s.addTrack(opus) // audio: no keyframe logic, every packet delivered
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
					s.write(p)
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

// BenchmarkSimulcastCursor measures a cursor on one layer of a three-layer
// stream (8, 1 and 3 packets per frame for high, low and mid): one op is
// one frame instant written and drained, so ns/op is the cursor's cost
// for all the layers' packets it reads past plus the ones it delivers.
// The single sub-benchmark is the same cursor on a stream of one track
// with the delivered layer's packets only, for comparison.
func BenchmarkSimulcastCursor(b *testing.B) {
	for _, bc := range []struct {
		name  string
		layer int // index into simulcastWriter.tracks; -1: no simulcast
		pkts  int // packets per frame delivered
	}{{"low", 1, 1}, {"high", 0, 8}, {"single-1pkt", -1, 1}, {"single-8pkt", -1, 8}} {
		b.Run(bc.name, func(b *testing.B) {
			var s *Stream
			var w *simulcastWriter
			var c *Cursor
			var err error
			if bc.layer >= 0 {
				s, w, _ = newSimulcastStream(b)
			} else {
				h := New(Config{RingPackets: 1024, PLIMinInterval: time.Second})
				sw, _ := h.Publish("single", &fakePub{}, []media.Codec{h264})
				sw.AddTrack(h264)
				s = sw.Stream()
			}
			if c, err = s.Join(); err != nil {
				b.Fatal(err)
			}
			if bc.layer >= 0 {
				c.SetLayer(w.tracks[bc.layer])
			}
			var seq uint16
			single := func(key bool) {
				for k := range bc.pkts {
					payload := slice
					if key {
						payload = idr
					}
					seq++
					s.write(&Packet{Track: 0, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Payload: payload, Marker: k == bc.pkts-1})
				}
			}
			delivered := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				if w != nil {
					w.frame(i%50 == 0)
				} else {
					single(i%50 == 0)
				}
				b.StartTimer()
				for {
					_, _, ok, err := c.TryNext()
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						break
					}
					delivered++
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(max(delivered, 1)), "ns/delivered-pkt")
		})
	}
}
