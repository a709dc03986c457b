package whep

// sent is how many packets, and payload bytes, forward has sent to the
// viewer; the metrics read it at scrape time.
func (s *Session) sent() (packets, bytes uint64) {
	return s.packetsOut.Load(), s.bytesOut.Load()
}
