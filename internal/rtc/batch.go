package rtc

import (
	"net"
	"net/netip"
	"sync"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// batchNet is the transport.Net the shared UDP mux listens through: on
// Linux its sockets batch outgoing packets (see batchConn) so that one
// system call carries many packets.
type batchNet struct {
	*stdnet.Net
	mu    sync.Mutex
	conns []*batchConn
}

func newBatchNet() (*batchNet, error) {
	n, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	return &batchNet{Net: n}, nil
}

// ListenUDP implements transport.Net.
func (n *batchNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	bc, err := newBatchConn(c)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	n.mu.Lock()
	n.conns = append(n.conns, bc)
	n.mu.Unlock()
	return bc, nil
}

// list returns the mux's sockets.
func (n *batchNet) list() []*batchConn {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.conns
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter for pion's mux;
// packets of detached peers (detach.go) are handled on the way.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	for {
		n, addr, err := b.read(p)
		if err != nil || !b.any.Load() || !b.claim(p[:n], addr, b) {
			return n, addr, err
		}
	}
}

// WriteToAddrPort implements ice.AddrPortReaderWriter for pion's mux;
// what pion writes to a detached peer while closing its PeerConnection
// is dropped (Direct.ClosePeer).
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if b.mutes(addr) {
		return len(p), nil
	}
	return b.enqueue(p, addr)
}
