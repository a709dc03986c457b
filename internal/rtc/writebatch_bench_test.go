//go:build linux

package rtc

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/sys/unix"
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
	routes := loopbackViewers(b, bc, viewers)
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

// BenchmarkFanoutFloor sends the traffic of sluice-bench's 200-viewer
// scenario at 2.5 Mbit/s (per 40 ms, to each viewer: one video frame of
// 11 packets of 1200 bytes and two Opus packets of 100 bytes) at real-time
// pace from one thread, as the egress workers send it: each packet sealed
// with its viewer's AES-GCM key ("sealed"; "plain" leaves that out,
// "plain-video-only" the audio too), one
// pass per video frame and per audio packet, a pass's datagrams queued in
// one Batch (one GSO datagram per viewer and frame, one sendmmsg). There
// is nothing else: no hub, no RTCP, no goroutine hand-offs. cpu-µs/pkt is
// the sending thread's CPU time (getrusage RUSAGE_THREAD, user and
// system) per packet sent: on loopback, where the kernel runs the
// receiving half in the sender's system call, the least a server can
// spend per delivered packet here, comparable with sluice-bench's server
// CPU µs/packet. Goroutines drain the viewers' sockets, as the bench's
// viewers do.
func BenchmarkFanoutFloor(b *testing.B) {
	const viewers, videoPkts, videoSize, audioSize = 200, 11, 1200, 100
	const tick = 20 * time.Millisecond // an Opus packet; a video frame every other tick
	bc := loopbackBatchConn(b)
	routes := loopbackViewers(b, bc, viewers)
	key, salt := make([]byte, 16), make([]byte, 12)
	sealers := make([]*gcmSealer, viewers)
	for i := range sealers {
		_, _ = rand.Read(key)
		g, err := newGCMSealer(srtp.ProtectionProfileAeadAes128Gcm, key, salt)
		if err != nil {
			b.Fatal(err)
		}
		sealers[i] = g
	}
	for _, c := range []struct {
		name          string
		sealed, audio bool
	}{{"sealed", true, true}, {"plain", false, true}, {"plain-video-only", false, false}} {
		sealed := c.sealed
		audioPkts := 0
		if c.audio {
			audioPkts = 2
		}
		b.Run(c.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			batch := NewBatch()
			opens := make([]openGroup, viewers)
			payload := make([]byte, videoSize)
			var seq [2]uint16 // audio, video
			pass := func(size, n int, kind int) {
				for v, r := range routes {
					for k := range n {
						p := append(batch.buffer(), 0x80, 96, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
						binary.BigEndian.PutUint16(p[2:], seq[kind]+uint16(k))
						binary.BigEndian.PutUint32(p[8:], uint32(v<<1|kind))
						p = append(p, payload[:size]...)
						if sealed {
							p = sealers[v].seal(p, 12, uint32(v<<1|kind), seq[kind]+uint16(k))
						}
						batch.add(r, p, &opens[v])
					}
				}
				batch.Flush()
				seq[kind] += uint16(n)
			}
			start := threadCPU(b)
			next := time.Now()
			for b.Loop() {
				if audioPkts > 0 {
					pass(audioSize, 1, 0)
				}
				pass(videoSize, videoPkts, 1)
				next = next.Add(tick)
				time.Sleep(time.Until(next))
				if audioPkts > 0 {
					pass(audioSize, 1, 0)
				}
				next = next.Add(tick)
				time.Sleep(time.Until(next))
			}
			used := threadCPU(b) - start
			b.ReportMetric(float64(used.Microseconds())/float64(b.N*viewers*(videoPkts+audioPkts)), "cpu-µs/pkt")
		})
	}
}

// threadCPU is the calling thread's CPU time, user and system.
func threadCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopbackViewers opens n loopback sockets, drained by goroutines until the
// benchmark ends, and returns bc's routes to them.
func loopbackViewers(b *testing.B, bc *batchConn, n int) []*route {
	routes := make([]*route, n)
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
	return routes
}
