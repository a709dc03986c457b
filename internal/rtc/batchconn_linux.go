package rtc

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Limits of one UDP GSO send (Linux: UDP_MAX_SEGMENTS, 64 KiB datagram).
const (
	gsoMaxSegments = 64
	gsoMaxBytes    = 65000
	// batchMaxPackets flushes a queue this long at once.
	batchMaxPackets = 512
	// packetBufSize fits one packet of any MTU sluice sends (pion's 1200
	// bytes, or a publisher's packet of up to about 1500 relayed as is,
	// plus SRTP's tag).
	packetBufSize = 2048
	// batchDelay bounds how long a queued packet waits when nobody calls
	// Flush (pion's own writes: STUN, DTLS, RTCP).
	batchDelay = 500 * time.Microsecond
	// destSweep is how often queues of destinations that sent nothing
	// since the last sweep (viewers gone) are dropped.
	destSweep = 10 * time.Second
)

// batchConn is the mux's UDP socket with batched writes. Packets written
// through WriteToAddrPort (pion's path for media) are queued per
// destination; Flush sends the queue with one sendmmsg, each destination's
// run of equal-size packets as one UDP GSO datagram that the kernel splits
// (a video frame to one viewer: one system call and one pass through the
// stack instead of one per packet). A timer flushes what nobody flushed.
type batchConn struct {
	*net.UDPConn
	owners
	raw    syscall.RawConn
	recv   *mmsgReceiver
	family int // of the socket: AF_INET or AF_INET6
	gso    atomic.Bool

	mu     sync.Mutex
	dests  map[netip.AddrPort]*destQueue
	active []*destQueue // with queued packets, in order of first write
	queued int
	timer  *time.Timer
	armed  bool
	out    outbox
	bufs   bufPool
	swept  time.Time // when sweep last ran
}

// dest is a destination address, with its kernel form built once.
type dest struct {
	addr netip.AddrPort
	sa   sockaddr
}

type destQueue struct {
	dest
	groups []gsoGroup
	n      int  // groups in use
	listed bool // in batchConn.active
	used   bool // written to since the last sweep
	// dtls is the last DTLS datagram written (pion's final handshake
	// flight), replayed for a detached peer that did not get it (detach.go).
	dtls []byte
}

// gsoGroup is a run of packets to one destination, all of size seg but the
// last, which may be shorter (what UDP_SEGMENT accepts).
type gsoGroup struct {
	to     *dest
	iov    unix.Iovec
	buf    []byte
	seg    int
	count  int
	closed bool // the last packet was shorter: nothing may follow
	oob    []byte
}

func newBatchConn(c *net.UDPConn) (*batchConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	family, err := socketFamily(raw)
	if err != nil {
		return nil, err
	}
	b := &batchConn{UDPConn: c, raw: raw, recv: newMmsgReceiver(raw), family: family, dests: make(map[netip.AddrPort]*destQueue), swept: time.Now()}
	b.out.mmsg = newMmsgSender(raw)
	b.gso.Store(true)
	b.timer = time.AfterFunc(time.Hour, b.Flush)
	b.timer.Stop()
	return b, nil
}

// route is the way to addr through this socket.
func (b *batchConn) route(addr netip.AddrPort) (*route, error) {
	sa, err := makeSockaddr(addr, b.family)
	if err != nil {
		return nil, err
	}
	return &route{conn: b, dest: dest{addr: addr, sa: sa}}, nil
}

// lastDTLS returns a copy of the last DTLS datagram written to addr.
func (b *batchConn) lastDTLS(addr netip.AddrPort) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if q := b.dests[addr]; q != nil {
		return append([]byte(nil), q.dtls...)
	}
	return nil
}

// read reads one datagram (recvmmsg_linux.go).
func (b *batchConn) read(p []byte) (int, netip.AddrPort, error) {
	n, addr, err := b.recv.read(p)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) { // the RawConn's error (closed, deadline)
			err = op.Err
		}
		err = &net.OpError{Op: "read", Net: "udp", Addr: b.LocalAddr(), Err: err}
	}
	return n, addr, err
}

// enqueue queues p for addr.
func (b *batchConn) enqueue(p []byte, addr netip.AddrPort) (int, error) {
	if len(p) > gsoMaxBytes {
		return b.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	b.mu.Lock()
	q := b.dests[addr]
	if q == nil {
		sa, err := makeSockaddr(addr, b.family)
		if err != nil {
			b.mu.Unlock()
			return 0, err
		}
		q = &destQueue{dest: dest{addr: addr, sa: sa}}
		b.dests[addr] = q
	}
	if !q.listed {
		q.listed = true
		b.active = append(b.active, q)
	}
	q.used = true
	if p[0] >= 20 && p[0] < 64 {
		q.dtls = append(q.dtls[:0], p...)
	}
	q.add(p, b.gso.Load(), &b.bufs)
	b.queued++
	if b.queued >= batchMaxPackets {
		b.flushLocked()
	} else if !b.armed {
		b.armed = true
		b.timer.Reset(batchDelay)
	}
	b.mu.Unlock()
	return len(p), nil
}

func (q *destQueue) add(p []byte, gso bool, bufs *bufPool) {
	if q.n > 0 && q.groups[q.n-1].join(p, gso, bufs) {
		return
	}
	if q.n == len(q.groups) {
		q.groups = append(q.groups, gsoGroup{to: &q.dest})
	}
	q.groups[q.n].start(p, bufs)
	q.n++
}

// gsoJoins says whether a packet of n bytes may join a GSO datagram of
// count packets and size bytes whose first packet is seg bytes: no more
// than gsoMaxSegments packets, none larger than the first, only the last
// shorter (closed: it came already), at most gsoMaxBytes in all.
func gsoJoins(gso, closed bool, count, seg, size, n int) bool {
	return gso && !closed && count < gsoMaxSegments && n <= seg && size+n <= gsoMaxBytes
}

// join appends p to the datagram if UDP GSO allows it (gsoJoins).
func (g *gsoGroup) join(p []byte, gso bool, bufs *bufPool) bool {
	if !gsoJoins(gso, g.closed, g.count, g.seg, len(g.buf), len(p)) {
		return false
	}
	if len(g.buf)+len(p) > cap(g.buf) {
		g.buf = bufs.growGSO(g.buf)
	}
	g.buf = append(g.buf, p...)
	g.count++
	g.closed = len(p) < g.seg
	return true
}

// start makes p the datagram's first packet.
func (g *gsoGroup) start(p []byte, bufs *bufPool) {
	if g.buf == nil {
		g.buf = bufs.buffer()
	}
	g.buf = append(g.buf[:0], p...)
	g.seg, g.count, g.closed = len(p), 1, false
}

// Flush sends everything queued.
func (b *batchConn) Flush() {
	b.mu.Lock()
	b.flushLocked()
	b.mu.Unlock()
}

func (b *batchConn) flushLocked() {
	if b.armed {
		b.armed = false
		b.timer.Stop()
	}
	if b.queued == 0 {
		return
	}
	for _, q := range b.active {
		b.out.queue(q.groups[:q.n])
	}
	b.out.send(b)
	for _, q := range b.active {
		b.release(q)
		q.listed = false
	}
	clear(b.active)
	b.active = b.active[:0]
	b.queued = 0
	if now := time.Now(); now.Sub(b.swept) >= destSweep {
		b.swept = now
		b.sweep()
	}
}

// sweep drops the queues of destinations not written to since the last
// sweep, so that the map follows the viewers there are, not every address
// ever served. b.mu is held.
func (b *batchConn) sweep() {
	for addr, q := range b.dests {
		if !q.used && q.n == 0 && !q.listed {
			delete(b.dests, addr)
			continue
		}
		q.used = false
	}
}

// bufPool holds the buffers of sent datagrams for the next ones, so that
// buffer memory follows the packets in flight, not the destinations: a
// viewer idle between frames holds none. A datagram starts in a
// one-packet buffer and moves to a multi-packet one (which grows to the
// largest frame sent) when a second packet joins it. Kept apart, the
// single packets in flight (audio to every viewer) do not each hold a
// buffer that once carried a whole video frame.
type bufPool struct {
	free    [][]byte
	freeGSO [][]byte
}

// buffer returns an empty datagram buffer.
func (b *bufPool) buffer() []byte {
	if n := len(b.free); n > 0 {
		buf := b.free[n-1]
		b.free[n-1] = nil
		b.free = b.free[:n-1]
		return buf[:0]
	}
	return make([]byte, 0, packetBufSize)
}

// growGSO moves a datagram that gets its second packet into a
// multi-packet buffer, and frees its one-packet buffer.
func (b *bufPool) growGSO(buf []byte) []byte {
	var big []byte
	if n := len(b.freeGSO); n > 0 {
		big = b.freeGSO[n-1][:0]
		b.freeGSO[n-1] = nil
		b.freeGSO = b.freeGSO[:n-1]
	} else {
		big = make([]byte, 0, 4*packetBufSize) // grows with append
	}
	big = append(big, buf...)
	b.put(buf)
	return big
}

// put keeps a sent datagram's buffer for the next ones, up to the bounds.
func (b *bufPool) put(buf []byte) {
	switch {
	case cap(buf) > packetBufSize:
		if len(b.freeGSO) < batchMaxPackets {
			b.freeGSO = append(b.freeGSO, buf)
		}
	case len(b.free) < batchMaxPackets:
		b.free = append(b.free, buf)
	}
}

// release gives the buffers of a queue's sent datagrams back.
func (b *batchConn) release(q *destQueue) {
	b.bufs.release(q.groups[:q.n])
	q.n = 0
}

// release gives the buffers of sent datagrams back.
func (b *bufPool) release(groups []gsoGroup) {
	for i := range groups {
		g := &groups[i]
		b.put(g.buf)
		g.buf, g.iov.Base = nil, nil
	}
}

// outbox is the messages of one sendmmsg call being built.
type outbox struct {
	mmsg *mmsgSender
	msgs []mmsghdr
	sent []datagram // the datagram of each message in msgs
}

// datagram is what an outbox sends: a GSO run of packets to one
// destination.
type datagram interface {
	// packets is how many packets it carries.
	packets() int
	// sendSplit sends its packets one by one.
	sendSplit(c *batchConn)
}

// queue adds a queue's datagrams to the messages to send.
func (b *outbox) queue(groups []gsoGroup) {
	for i := range groups {
		g := &groups[i]
		g.iov.Base = &g.buf[0]
		g.iov.SetLen(len(g.buf))
		b.add(&g.to.sa, unsafe.Slice(&g.iov, 1), g.count, g.seg, &g.oob, g)
	}
}

// add adds one message: the packets in iov (one datagram, or a GSO run of
// count packets of seg bytes each but the last) to sa. oob is the
// message's control buffer, made on first use.
func (b *outbox) add(sa *sockaddr, iov []unix.Iovec, count, seg int, oob *[]byte, d datagram) {
	var m mmsghdr
	m.hdr.Name = &sa.raw[0]
	m.hdr.Namelen = sa.len
	m.hdr.Iov = &iov[0]
	m.hdr.SetIovlen(len(iov))
	if count > 1 {
		if *oob == nil {
			*oob = make([]byte, unix.CmsgSpace(2))
		}
		putSegmentCmsg(*oob, seg)
		m.hdr.Control = &(*oob)[0]
		m.hdr.SetControllen(len(*oob))
	}
	b.msgs = append(b.msgs, m)
	b.sent = append(b.sent, d)
}

// send writes the queued messages to c's socket with sendmmsg. If the
// kernel refuses GSO, GSO is switched off and the datagrams are sent one
// packet at a time.
func (b *outbox) send(c *batchConn) {
	msgs, sent := b.msgs, b.sent
	for len(msgs) > 0 {
		n, err := b.mmsg.send(msgs)
		if err != nil {
			if sent[0].packets() > 1 && (errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOPROTOOPT)) {
				c.gso.Store(false)
				sent[0].sendSplit(c)
				n = 1
			} else {
				n = max(n, 1) // drop the failing datagram, as a lossy network would
			}
		}
		msgs, sent = msgs[n:], sent[n:]
	}
	clear(b.msgs)
	clear(b.sent)
	b.msgs, b.sent = b.msgs[:0], b.sent[:0]
}

func (g *gsoGroup) packets() int { return g.count }

func (g *gsoGroup) sendSplit(c *batchConn) {
	buf := g.buf
	for len(buf) > 0 {
		k := min(g.seg, len(buf))
		_, _ = c.UDPConn.WriteToUDPAddrPort(buf[:k], g.to.addr)
		buf = buf[k:]
	}
}

// putSegmentCmsg writes a UDP_SEGMENT control message (the GSO segment
// size) into oob, which has room for it.
func putSegmentCmsg(oob []byte, seg int) {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	binary.NativeEndian.PutUint16(oob[unix.CmsgLen(0):], uint16(seg))
}

// Close flushes and closes the socket.
func (b *batchConn) Close() error {
	b.Flush()
	b.timer.Stop()
	return b.UDPConn.Close()
}
