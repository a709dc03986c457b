//go:build linux

package rtc

import (
	"net"
	"testing"
)

// BenchmarkSendFrames: one video frame (8 packets of 1200 bytes) to each
// of 64 loopback viewers per round, as a worker's pass sends it; ns/pkt
// is the time per packet. "batch" is the egress path (rtc.Batch: one sendmmsg,
// one GSO datagram per viewer), "sendto" one system call per packet (what
// pion's path and MediaMTX do). Goroutines drain the viewers' sockets.
// On loopback the kernel delivers each packet to its socket inside the
// sender's system call, so both include the receiving half: on this
// machine most of the batch path's cost.
func BenchmarkSendFrames(b *testing.B) {
	const viewers, perFrame, size = 64, 8, 1200
	bc := loopbackBatchConn(b)
	routes := make([]*route, viewers)
	for i := range routes {
		r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		_ = r.SetReadBuffer(1 << 20)
		b.Cleanup(func() { _ = r.Close() })
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
		if routes[i], err = bc.route(r.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
			b.Fatal(err)
		}
	}
	pkt := make([]byte, size)
	b.Run("batch", func(b *testing.B) {
		batch := NewBatch()
		opens := make([]openGroup, viewers)
		for b.Loop() {
			for v, r := range routes {
				for range perFrame {
					batch.add(r, append(batch.buffer(), pkt...), &opens[v])
				}
			}
			batch.Flush()
		}
		perPacket(b, viewers*perFrame)
	})
	b.Run("sendto", func(b *testing.B) {
		for b.Loop() {
			for _, r := range routes {
				for range perFrame {
					_, _ = bc.UDPConn.WriteToUDPAddrPort(pkt, r.addr)
				}
			}
		}
		perPacket(b, viewers*perFrame)
	})
}

// perPacket reports the time per packet of rounds of n packets.
func perPacket(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/pkt")
}
