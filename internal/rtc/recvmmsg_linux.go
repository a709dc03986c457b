package rtc

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// recvBatch is how many datagrams one recvmmsg takes at most: a video
// frame's burst from a publisher, or viewers' reports arriving together.
const recvBatch = 8

// recvBufSize holds any datagram pion reads (its mux reads up to 8 KiB).
const recvBufSize = 8192

// mmsgReceiver reads the shared socket with recvmmsg as a raw system call
// and hands the datagrams out one at a time. Raw, because a system call
// made through the syscall package tells the Go runtime about itself, and
// the first one after the process was idle wakes the runtime's monitor
// thread (sysmon), which then polls every 20 µs for a while: once per
// burst of media, thousands of thread wake-ups a second that do nothing
// for a server that never blocks in a system call (the socket is
// non-blocking; waiting is the netpoller's). Batched, because a
// publisher's frame arrives as a burst of packets.
type mmsgReceiver struct {
	raw  syscall.RawConn
	do   func(fd uintptr) bool
	mu   sync.Mutex // one reader at a time
	msgs [recvBatch]mmsghdr
	iovs [recvBatch]unix.Iovec
	sas  [recvBatch]sockaddr
	bufs [recvBatch][]byte
	n    int // datagrams received by the last call
	next int // the next of them to hand out
	err  syscall.Errno
}

func newMmsgReceiver(raw syscall.RawConn) *mmsgReceiver {
	r := &mmsgReceiver{raw: raw}
	r.do = r.call
	for i := range r.msgs {
		r.bufs[i] = make([]byte, recvBufSize)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(recvBufSize)
		m := &r.msgs[i].hdr
		m.Name = &r.sas[i].raw[0]
		m.Iov = &r.iovs[i]
		m.SetIovlen(1)
	}
	return r
}

// read copies the next datagram into p (truncating it to len(p), as
// recvfrom does) and returns its length and sender.
func (r *mmsgReceiver) read(p []byte) (int, netip.AddrPort, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.next == r.n {
		r.next, r.n, r.err = 0, 0, 0
		for i := range r.msgs {
			r.msgs[i].hdr.Namelen = uint32(len(r.sas[i].raw))
			r.msgs[i].n = 0
		}
		if err := r.raw.Read(r.do); err != nil {
			return 0, netip.AddrPort{}, err
		}
		if r.err != 0 {
			return 0, netip.AddrPort{}, r.err
		}
	}
	i := r.next
	r.next++
	n := copy(p, r.bufs[i][:r.msgs[i].n])
	return n, r.sas[i].addrPort(r.msgs[i].hdr.Namelen), nil
}

func (r *mmsgReceiver) call(fd uintptr) bool {
	for {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.msgs[0])), recvBatch, 0, 0, 0)
		switch e {
		case 0:
			r.n = int(n)
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // nothing to read: wait on the netpoller
		default:
			r.err = e
		}
		return true
	}
}

// addrPort decodes a sender's address the way net.UDPConn does: IPv4
// senders on an IPv6 socket as mapped addresses, link-local zones by
// interface name.
func (sa *sockaddr) addrPort(namelen uint32) netip.AddrPort {
	family := (*unix.RawSockaddr)(unsafe.Pointer(&sa.raw[0])).Family
	switch {
	case family == unix.AF_INET6 && namelen >= unix.SizeofSockaddrInet6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw[0]))
		ip := netip.AddrFrom16(s.Addr)
		if s.Scope_id != 0 {
			ip = ip.WithZone(zoneName(int(s.Scope_id)))
		}
		return netip.AddrPortFrom(ip, binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s.Port))[:]))
	case family == unix.AF_INET && namelen >= unix.SizeofSockaddrInet4:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw[0]))
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&s.Port))[:]))
	}
	return netip.AddrPort{}
}

// zones caches interface names by index: a link-local peer's every
// packet names its zone, and asking the kernel costs a netlink round trip.
var zones sync.Map // int -> string

// zoneName is an interface index's name, or the index in decimal.
func zoneName(index int) string {
	if name, ok := zones.Load(index); ok {
		return name.(string)
	}
	name := strconv.Itoa(index)
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		name = ifi.Name
	}
	zones.Store(index, name)
	return name
}
