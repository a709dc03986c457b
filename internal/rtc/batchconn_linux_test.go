package rtc

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestBatchConnDeliversInOrder: packets queued for two destinations arrive
// complete and in order after Flush, GSO runs included (equal
// sizes, then a shorter last packet, then a larger one starting a new
// datagram), and the timer flushes what nobody flushed.
func TestBatchConnDeliversInOrder(t *testing.T) {
	b := loopbackBatchConn(t)
	recv := []*net.UDPConn{loopbackUDP(t), loopbackUDP(t)}
	sizes := []int{1200, 1200, 1200, 700, 1200, 100, 1200}
	var sent [2][][]byte
	for d, r := range recv {
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte(i*16 + d)}, n)
			sent[d] = append(sent[d], p)
			if _, err := b.WriteToAddrPort(p, r.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
				t.Fatal(err)
			}
		}
		if d == 0 {
			b.Flush() // recv[1]'s packets are left to the timer
		}
	}
	buf := make([]byte, 2000)
	for d, r := range recv {
		for i, want := range sent[d] {
			_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := r.Read(buf)
			if err != nil {
				t.Fatalf("dest %d packet %d: %v", d, i, err)
			}
			if !bytes.Equal(buf[:n], want) {
				t.Fatalf("dest %d packet %d: got %d bytes of %x, want %d of %x", d, i, n, buf[0], len(want), want[0])
			}
		}
	}
	if !b.gso.Load() {
		t.Log("the kernel refused UDP GSO here: packets went one by one")
	}
}

// TestBatchConnReusesBuffers: the datagram buffers of sent packets serve
// the next ones, to any destination, so that many viewers between frames
// hold no buffer memory; what is reused arrives intact.
func TestBatchConnReusesBuffers(t *testing.T) {
	b := loopbackBatchConn(t)
	recv := make([]*net.UDPConn, 8)
	for i := range recv {
		recv[i] = loopbackUDP(t)
	}
	buf := make([]byte, 2000)
	for round := range 3 {
		for d, r := range recv {
			addr := r.LocalAddr().(*net.UDPAddr).AddrPort()
			for i := range 3 {
				p := bytes.Repeat([]byte{byte(round*64 + d*4 + i)}, 1000+100*d)
				if _, err := b.WriteToAddrPort(p, addr); err != nil {
					t.Fatal(err)
				}
			}
			b.Flush()
			for i := range 3 {
				_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := r.Read(buf)
				if err != nil {
					t.Fatalf("round %d dest %d packet %d: %v", round, d, i, err)
				}
				if want := byte(round*64 + d*4 + i); n != 1000+100*d || buf[0] != want || buf[n-1] != want {
					t.Fatalf("round %d dest %d packet %d: %d bytes of %x, want %d of %x", round, d, i, n, buf[0], 1000+100*d, want)
				}
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for addr, q := range b.dests {
		for _, g := range q.groups {
			if g.buf != nil {
				t.Errorf("%v holds a %d-byte buffer after its flush", addr, cap(g.buf))
			}
		}
	}
	// One destination's three packets at a time were in flight: one
	// GSO datagram's buffer and the one-packet buffer it started in
	// (three one-packet buffers without GSO) serve all eight.
	if n := len(b.bufs.free) + len(b.bufs.freeGSO); n == 0 || n > 3 || len(b.bufs.freeGSO) > 1 {
		t.Errorf("%d one-packet and %d GSO buffers free after the rounds, want 1..3 in all, at most 1 GSO", len(b.bufs.free), len(b.bufs.freeGSO))
	}
	for _, buf := range b.bufs.free {
		if cap(buf) > packetBufSize {
			t.Errorf("a %d-byte buffer among the one-packet buffers", cap(buf))
		}
	}
}

// TestBatchConnForgetsIdleDestinations: a destination's queue goes once
// nothing was written to it for a whole sweep period; one still in use
// stays.
func TestBatchConnForgetsIdleDestinations(t *testing.T) {
	b := loopbackBatchConn(t)
	gone := netip.MustParseAddrPort("127.0.0.1:9") // discard port
	live := netip.MustParseAddrPort("127.0.0.1:7")
	for _, a := range []netip.AddrPort{gone, live} {
		if _, err := b.WriteToAddrPort([]byte{1, 2, 3}, a); err != nil {
			t.Fatal(err)
		}
	}
	b.Flush()
	b.mu.Lock()
	b.sweep() // both were used in this period: both stay
	n := len(b.dests)
	b.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d destination queues after a sweep of two in use, want 2", n)
	}
	if _, err := b.WriteToAddrPort([]byte{4}, live); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep() // gone sent nothing since the last sweep
	if _, ok := b.dests[gone]; ok {
		t.Error("an idle destination's queue stayed")
	}
	if _, ok := b.dests[live]; !ok {
		t.Error("a destination in use lost its queue")
	}
}

// TestBatchConnAddressFamilies: an IPv6 socket sends to IPv6 peers, a
// dual-stack one to IPv4 peers too (as mapped addresses), and an IPv4
// socket refuses an IPv6 destination with an error instead of sending
// garbage.
func TestBatchConnAddressFamilies(t *testing.T) {
	cases := []struct {
		name           string
		network, local string
		peer           string
	}{
		{"ipv6", "udp6", "[::1]:0", "[::1]:0"},
		{"dual-stack to ipv4", "udp", "[::]:0", "127.0.0.1:0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			la, _ := net.ResolveUDPAddr(c.network, c.local)
			send, err := net.ListenUDP(c.network, la)
			if err != nil {
				t.Skipf("no %s socket here: %v", c.network, err)
			}
			b, err := newBatchConn(send)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			pa, _ := net.ResolveUDPAddr("udp", c.peer)
			recv, err := net.ListenUDP("udp", pa)
			if err != nil {
				t.Skipf("no peer socket at %s here: %v", c.peer, err)
			}
			defer recv.Close()
			dest := recv.LocalAddr().(*net.UDPAddr).AddrPort()
			for i := range 3 {
				if _, err := b.WriteToAddrPort(bytes.Repeat([]byte{byte(i)}, 1000), dest); err != nil {
					t.Fatal(err)
				}
			}
			b.Flush()
			buf := make([]byte, 2000)
			for i := range 3 {
				_ = recv.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := recv.Read(buf)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if n != 1000 || buf[0] != byte(i) {
					t.Fatalf("packet %d: %d bytes of %x", i, n, buf[0])
				}
			}
		})
	}

	b := loopbackBatchConn(t)
	if _, err := b.WriteToAddrPort([]byte{1}, netip.MustParseAddrPort("[::1]:9")); !errors.Is(err, errFamily) {
		t.Errorf("IPv6 destination on an IPv4 socket: %v, want errFamily", err)
	}
}

// TestBatchConnReads: the raw recvmmsg reader hands out a burst of
// datagrams one at a time, in order, with each sender's address as
// net.UDPConn reports it (IPv4 senders on a dual-stack socket as mapped
// addresses), truncates to the caller's buffer as recvfrom does, and
// reports deadlines as timeouts and a closed socket as net.ErrClosed.
func TestBatchConnReads(t *testing.T) {
	cases := []struct{ name, network, local, peerNet, peer string }{
		{"ipv4", "udp4", "127.0.0.1:0", "udp4", "127.0.0.1:0"},
		{"ipv6", "udp6", "[::1]:0", "udp6", "[::1]:0"},
		{"dual-stack from ipv4", "udp", "[::]:0", "udp4", "127.0.0.1:0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			la, _ := net.ResolveUDPAddr(c.network, c.local)
			sock, err := net.ListenUDP(c.network, la)
			if err != nil {
				t.Skipf("no %s socket here: %v", c.network, err)
			}
			b, err := newBatchConn(sock)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			pa, _ := net.ResolveUDPAddr(c.peerNet, c.peer)
			peer, err := net.ListenUDP(c.peerNet, pa)
			if err != nil {
				t.Skipf("no peer socket at %s here: %v", c.peer, err)
			}
			defer peer.Close()
			to := &net.UDPAddr{IP: pa.IP, Port: b.LocalAddr().(*net.UDPAddr).Port}
			const burst = recvBatch + 3 // more than one recvmmsg takes
			for i := range burst {
				if _, err := peer.WriteToUDP(bytes.Repeat([]byte{byte(i)}, 100+i), to); err != nil {
					t.Fatal(err)
				}
			}
			// What net.UDPConn would report for this sender.
			want := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			if c.network == "udp" {
				want = netip.AddrPortFrom(netip.AddrFrom16(want.Addr().As16()), want.Port())
			}
			buf := make([]byte, 2000)
			_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
			for i := range burst {
				p := buf
				if i == 2 {
					p = buf[:50] // truncated, as recvfrom does
				}
				n, from, err := b.ReadFromAddrPort(p)
				if err != nil {
					t.Fatalf("datagram %d: %v", i, err)
				}
				wantN := min(100+i, len(p))
				if n != wantN || buf[0] != byte(i) || buf[n-1] != byte(i) {
					t.Fatalf("datagram %d: %d bytes of %x, want %d of %x", i, n, buf[0], wantN, i)
				}
				if from != want {
					t.Fatalf("datagram %d from %v, want %v", i, from, want)
				}
			}
			_ = b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, _, err := b.ReadFromAddrPort(buf); !os.IsTimeout(err) {
				t.Fatalf("read past the deadline: %v, want a timeout", err)
			}
			_ = b.SetReadDeadline(time.Time{})
			done := make(chan error, 1)
			go func() {
				_, _, err := b.ReadFromAddrPort(buf)
				done <- err
			}()
			time.Sleep(20 * time.Millisecond)
			_ = b.UDPConn.Close()
			select {
			case err := <-done:
				if !errors.Is(err, net.ErrClosed) {
					t.Fatalf("read on a closed socket: %v, want net.ErrClosed", err)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("read still blocked 2 s after the socket closed")
			}
		})
	}
}
