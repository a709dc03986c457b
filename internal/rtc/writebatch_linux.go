package rtc

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchPackets bounds the packets a Batch holds: it flushes when full.
const batchPackets = 256

// Batch is one writer's own queue of datagrams on the shared sockets: an
// egress worker queues a pass's packets to all its viewers here
// (Direct.QueueRTP) and sends them with one sendmmsg per socket (Flush),
// each viewer's run of a frame as one UDP GSO datagram. Unlike the
// socket's shared queue it has no lock and no timer, and one worker's
// flush does not cut another's frames in half.
//
// Each packet is encrypted straight into a buffer of the Batch's own and
// sent from there: a datagram is a list of packet buffers (one iovec
// each), so no packet is copied after encryption and every buffer has the
// same size. Buffer memory follows the packets in flight, at most
// batchPackets. A Batch is not safe for concurrent use.
type Batch struct {
	dgrams  []batchDgram // datagrams in the order they were started
	n       int          // dgrams in use
	packets int
	gen     uint32  // counts flushes: a Direct's open datagram is valid in its generation only
	bufs    bufPool // packet buffers, all of packetBufSize
	outs    []batchOut
}

// batchDgram is a GSO run of packets to one destination, all of size seg
// but the last, which may be shorter.
type batchDgram struct {
	conn   *batchConn
	to     *dest
	bufs   [][]byte
	iov    []unix.Iovec
	size   int // bytes in all
	seg    int
	closed bool // the last packet was shorter: nothing may follow
	oob    []byte
}

// batchOut is the sendmmsg state of one socket.
type batchOut struct {
	conn *batchConn
	out  outbox
}

// NewBatch returns an empty Batch.
func NewBatch() *Batch { return &Batch{} }

// openGroup is where a writer's last datagram in a Batch is, so that its
// next packet can join it.
type openGroup struct {
	b   *Batch
	gen uint32
	i   int
}

// buffer returns an empty packet buffer of packetBufSize bytes, for add.
func (b *Batch) buffer() []byte { return b.bufs.buffer() }

// add queues p, which lies in a buffer from b.buffer that b now owns,
// for r, in the writer's open datagram when GSO allows.
func (b *Batch) add(r *route, p []byte, open *openGroup) {
	if open.b == b && open.gen == b.gen && open.i < b.n {
		if d := &b.dgrams[open.i]; d.to == &r.dest && d.join(p, r.conn.gso.Load()) {
			b.added()
			return
		}
	}
	if b.n == len(b.dgrams) {
		b.dgrams = append(b.dgrams, batchDgram{})
	}
	d := &b.dgrams[b.n]
	d.conn, d.to = r.conn, &r.dest
	d.seg, d.closed, d.size = len(p), false, 0
	d.push(p)
	*open = openGroup{b: b, gen: b.gen, i: b.n}
	b.n++
	b.added()
}

func (b *Batch) added() {
	b.packets++
	if b.packets >= batchPackets {
		b.Flush()
	}
}

// join appends p if UDP GSO allows it (gsoJoins).
func (d *batchDgram) join(p []byte, gso bool) bool {
	if !gsoJoins(gso, d.closed, len(d.bufs), d.seg, d.size, len(p)) {
		return false
	}
	d.closed = len(p) < d.seg
	d.push(p)
	return true
}

func (d *batchDgram) push(p []byte) {
	d.bufs = append(d.bufs, p)
	var v unix.Iovec
	v.Base = unsafe.SliceData(p)
	v.SetLen(len(p))
	d.iov = append(d.iov, v)
	d.size += len(p)
}

func (d *batchDgram) packets() int { return len(d.bufs) }

func (d *batchDgram) sendSplit(c *batchConn) {
	for _, p := range d.bufs {
		_, _ = c.UDPConn.WriteToUDPAddrPort(p, d.to.addr)
	}
}

// Flush sends what is queued: one sendmmsg per socket (nearly always
// one).
func (b *Batch) Flush() {
	if b.n == 0 {
		return
	}
	dgrams := b.dgrams[:b.n]
	for j := range dgrams {
		d := &dgrams[j]
		o := b.out(d.conn)
		o.out.add(&d.to.sa, d.iov, len(d.bufs), d.seg, &d.oob, d)
	}
	for i := range b.outs {
		if o := &b.outs[i]; len(o.out.msgs) > 0 {
			// What the socket's shared queue holds goes first: pion's final
			// DTLS flight to a viewer that just connected must not arrive
			// behind (or be dropped after) the burst of its first frames.
			o.conn.Flush()
			o.out.send(o.conn)
		}
	}
	for j := range dgrams {
		d := &dgrams[j]
		for k, p := range d.bufs {
			b.bufs.put(p) // at most batchPackets are ever out
			d.bufs[k] = nil
		}
		clear(d.iov)
		d.bufs, d.iov = d.bufs[:0], d.iov[:0]
		d.conn, d.to = nil, nil
	}
	b.n, b.packets = 0, 0
	b.gen++
}

// out returns the sendmmsg state for c.
func (b *Batch) out(c *batchConn) *batchOut {
	for i := range b.outs {
		if b.outs[i].conn == c {
			return &b.outs[i]
		}
	}
	b.outs = append(b.outs, batchOut{conn: c, out: outbox{mmsg: newMmsgSender(c.raw)}})
	return &b.outs[len(b.outs)-1]
}
