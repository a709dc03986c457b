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

// FlushTo sends the packets queued for one destination.
func (n *batchNet) FlushTo(addr netip.AddrPort) {
	n.mu.Lock()
	conns := n.conns
	n.mu.Unlock()
	for _, c := range conns {
		c.FlushTo(addr)
	}
}

// Flush sends every packet queued on the mux's sockets.
func (n *batchNet) Flush() {
	n.mu.Lock()
	conns := n.conns
	n.mu.Unlock()
	for _, c := range conns {
		c.Flush()
	}
}
