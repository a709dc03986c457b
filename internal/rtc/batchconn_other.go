//go:build !linux

package rtc

import (
	"net"
	"net/netip"
)

// batchConn elsewhere than Linux writes every packet at once.
type batchConn struct{ *net.UDPConn }

func newBatchConn(c *net.UDPConn) (*batchConn, error) { return &batchConn{c}, nil }

// ReadFromAddrPort implements ice.AddrPortReaderWriter.
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
}

// WriteToAddrPort implements ice.AddrPortReaderWriter.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	return b.UDPConn.WriteToUDPAddrPort(p, addr)
}

// Flush does nothing: nothing is queued.
func (b *batchConn) Flush() {}

// FlushTo does nothing: nothing is queued.
func (b *batchConn) FlushTo(netip.AddrPort) {}
