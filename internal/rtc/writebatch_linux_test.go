package rtc

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// batchPacket fills a buffer of the batch with n bytes of v.
func batchPacket(b *Batch, n int, v byte) []byte {
	return append(b.buffer(), bytes.Repeat([]byte{v}, n)...)
}

// readAll reads want's packets from r and compares them in order.
func readAll(t *testing.T, r *net.UDPConn, want [][]byte) {
	t.Helper()
	buf := make([]byte, 2000)
	for i, w := range want {
		_ = r.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("packet %d: %d bytes of %x, want %d of %x", i, n, buf[0], len(w), w[0])
		}
	}
}

// TestBatchGroupsEachWritersRun: packets of two writers, interleaved,
// arrive complete and in order; each writer's equal-size run (then a
// shorter last packet) is one datagram, a larger packet after it starts
// another, and nothing joins a datagram of an earlier flush.
func TestBatchGroupsEachWritersRun(t *testing.T) {
	bc := loopbackBatchConn(t)
	recv := []*net.UDPConn{loopbackUDP(t), loopbackUDP(t)}
	routes := make([]*route, len(recv))
	for i, r := range recv {
		rt, err := bc.route(addrOf(r))
		if err != nil {
			t.Fatal(err)
		}
		routes[i] = rt
	}
	b := NewBatch()
	opens := make([]openGroup, len(recv))
	sizes := []int{1200, 1200, 1200, 700, 1200}
	var sent [2][][]byte
	for i, n := range sizes {
		for d := range recv {
			p := batchPacket(b, n, byte(i*16+d))
			sent[d] = append(sent[d], append([]byte(nil), p...))
			b.add(routes[d], p, &opens[d])
		}
	}
	if b.packets != 10 {
		t.Errorf("Len %d, want 10", b.packets)
	}
	wantDgrams := 4 // per writer: 1200×3 + 700, then 1200
	if !bc.gso.Load() {
		wantDgrams = 10
	}
	if b.n != wantDgrams {
		t.Errorf("%d datagrams, want %d", b.n, wantDgrams)
	}
	b.Flush()
	for d, r := range recv {
		readAll(t, r, sent[d])
	}
	if len(b.bufs.free) != 10 {
		t.Errorf("%d buffers free after the flush, want the 10 sent", len(b.bufs.free))
	}

	// After a flush, a writer's next packet starts a datagram of its own.
	p := batchPacket(b, 1200, 0xee)
	b.add(routes[0], p, &opens[0])
	if b.n != 1 || b.packets != 1 {
		t.Errorf("%d datagrams of %d packets after the flush, want 1 of 1", b.n, b.packets)
	}
	b.Flush()
	readAll(t, recv[0], [][]byte{bytes.Repeat([]byte{0xee}, 1200)})
}

// TestBatchFlushesWhenFull: a batch holds at most batchPackets packets;
// the one that fills it sends them all, and buffers stay bounded.
func TestBatchFlushesWhenFull(t *testing.T) {
	bc := loopbackBatchConn(t)
	r := loopbackUDP(t)
	if err := r.SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	rt, err := bc.route(addrOf(r))
	if err != nil {
		t.Fatal(err)
	}
	b := NewBatch()
	var open openGroup
	var sent [][]byte
	for i := range batchPackets + 10 {
		p := batchPacket(b, 1000, byte(i))
		sent = append(sent, append([]byte(nil), p...))
		b.add(rt, p, &open)
	}
	if b.packets != 10 {
		t.Errorf("%d packets held after %d added, want 10", b.packets, batchPackets+10)
	}
	readAll(t, r, sent[:batchPackets])
	b.Flush()
	readAll(t, r, sent[batchPackets:])
	if len(b.bufs.free) > batchPackets {
		t.Errorf("%d buffers kept, want at most %d", len(b.bufs.free), batchPackets)
	}
}

// TestBatchSendsSharedQueueFirst: what pion queued on the socket (its
// final DTLS flight to a viewer that just connected) leaves before a
// batch's packets to the same viewer, not behind the burst of its first
// frames (where a full receive buffer would drop it and stall the
// handshake for a retransmission, a second).
func TestBatchSendsSharedQueueFirst(t *testing.T) {
	bc := loopbackBatchConn(t)
	r := loopbackUDP(t)
	rt, err := bc.route(addrOf(r))
	if err != nil {
		t.Fatal(err)
	}
	flight := bytes.Repeat([]byte{22}, 300) // a DTLS handshake record
	if _, err := bc.WriteToAddrPort(flight, addrOf(r)); err != nil {
		t.Fatal(err)
	}
	b := NewBatch()
	var open openGroup
	media := batchPacket(b, 1200, 0x80)
	want := append([]byte(nil), media...)
	b.add(rt, media, &open)
	b.Flush()
	readAll(t, r, [][]byte{flight, want})
}
