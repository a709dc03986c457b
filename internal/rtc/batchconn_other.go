//go:build !linux

package rtc

import (
	"net"
	"net/netip"
)

// batchConn elsewhere than Linux writes every packet at once.
type batchConn struct {
	*net.UDPConn
	owners
}

func newBatchConn(c *net.UDPConn) (*batchConn, error) { return &batchConn{UDPConn: c}, nil }

// lastDTLS returns nil: nothing is kept (no handshake replay, detach.go).
func (b *batchConn) lastDTLS(netip.AddrPort) []byte { return nil }

// enqueue sends p at once.
func (b *batchConn) enqueue(p []byte, addr netip.AddrPort) (int, error) {
	return b.UDPConn.WriteToUDPAddrPort(p, addr)
}

// Flush does nothing: nothing is queued.
func (b *batchConn) Flush() {}

// FlushTo does nothing: nothing is queued.
func (b *batchConn) FlushTo(netip.AddrPort) {}
