package rtc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsghdr is struct mmsghdr of sendmmsg(2).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// sockaddr is a destination in the kernel's form, built once per
// destination instead of once per datagram.
type sockaddr struct {
	raw [unix.SizeofSockaddrInet6]byte
	len uint32
}

// errFamily: an IPv6 destination on an IPv4 socket.
var errFamily = errors.New("address family does not match the socket")

// makeSockaddr encodes addr for a socket of the given family (AF_INET6
// sockets take IPv4 destinations as mapped addresses).
func makeSockaddr(addr netip.AddrPort, family int) (sockaddr, error) {
	var sa sockaddr
	ip := addr.Addr().Unmap()
	switch {
	case family == unix.AF_INET && ip.Is4():
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa.raw[0]))
		s.Family = unix.AF_INET
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.Port))[:], addr.Port())
		s.Addr = ip.As4()
		sa.len = unix.SizeofSockaddrInet4
	case family == unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa.raw[0]))
		s.Family = unix.AF_INET6
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&s.Port))[:], addr.Port())
		s.Addr = ip.As16()
		sa.len = unix.SizeofSockaddrInet6
	default:
		return sa, fmt.Errorf("%w: %s", errFamily, addr)
	}
	return sa, nil
}

// socketFamily is the address family of c's socket.
func socketFamily(c syscall.RawConn) (int, error) {
	family := 0
	var err error
	cerr := c.Control(func(fd uintptr) {
		var sa unix.Sockaddr
		if sa, err = unix.Getsockname(int(fd)); err == nil {
			if _, ok := sa.(*unix.SockaddrInet6); ok {
				family = unix.AF_INET6
			} else {
				family = unix.AF_INET
			}
		}
	})
	return family, errors.Join(cerr, err)
}

// mmsgSender calls sendmmsg on one socket. Its state lives in fields and
// its callback is made once, so that a call allocates nothing.
type mmsgSender struct {
	raw   syscall.RawConn
	do    func(fd uintptr) bool
	msgs  []mmsghdr
	n     int
	errno syscall.Errno
}

func newMmsgSender(raw syscall.RawConn) *mmsgSender {
	s := &mmsgSender{raw: raw}
	s.do = s.call
	return s
}

// send sends the messages with one system call and returns how many went.
// It is a raw system call: the calling goroutine keeps its processor. The
// socket is non-blocking, so the call never waits; it costs the kernel's
// work for the packets, often longer than the 20 µs after which the
// scheduler would otherwise hand the processor to another thread for the
// duration, at the price of two thread switches.
func (s *mmsgSender) send(msgs []mmsghdr) (int, error) {
	s.msgs, s.n, s.errno = msgs, 0, 0
	err := s.raw.Write(s.do)
	s.msgs = nil
	switch {
	case err != nil:
		return 0, err
	case s.errno != 0:
		return 0, s.errno
	}
	return s.n, nil
}

func (s *mmsgSender) call(fd uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&s.msgs[0])), uintptr(len(s.msgs)), 0, 0, 0)
	if e == unix.EAGAIN {
		return false // the send buffer is full: wait until it is not
	}
	s.n, s.errno = int(r), e
	return true
}
