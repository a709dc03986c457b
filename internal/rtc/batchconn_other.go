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

// read reads one datagram.
func (b *batchConn) read(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
}

// dest is a destination address.
type dest struct{ addr netip.AddrPort }

// route is the way to addr through this socket.
func (b *batchConn) route(addr netip.AddrPort) (*route, error) {
	return &route{conn: b, dest: dest{addr: addr}}, nil
}

// packetBufSize fits one packet of any MTU sluice sends.
const packetBufSize = 2048

// Batch elsewhere than Linux sends every packet at once.
type Batch struct{ buf []byte }

// buffer returns the packet buffer, free again once add returns.
func (b *Batch) buffer() []byte {
	if b.buf == nil {
		b.buf = make([]byte, 0, packetBufSize)
	}
	return b.buf[:0]
}

// NewBatch returns a Batch.
func NewBatch() *Batch { return &Batch{} }

type openGroup struct{}

func (b *Batch) add(r *route, p []byte, _ *openGroup) {
	_, _ = r.conn.UDPConn.WriteToUDPAddrPort(p, r.addr)
}

// Flush does nothing: nothing is queued.
func (b *Batch) Flush() {}
