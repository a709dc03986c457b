package record

import "sync/atomic"

// Stats counts what a Manager wrote and deleted, for the metrics.
type Stats struct {
	Recording uint64 // recorders running now
	Files     uint64 // segment files finished (closed whole)
	Bytes     uint64 // bytes written to segment files
	Errors    uint64 // recordings stopped by an error (a full disk)
	Removed   uint64 // files deleted by retention
}

// stats are the Manager's counters, updated by its goroutines.
type stats struct {
	running, files, bytes, errors, removed atomic.Uint64
}

// Stats returns the counters so far.
func (m *Manager) Stats() Stats {
	return Stats{
		Recording: m.stats.running.Load(),
		Files:     m.stats.files.Load(),
		Bytes:     m.stats.bytes.Load(),
		Errors:    m.stats.errors.Load(),
		Removed:   m.stats.removed.Load(),
	}
}
