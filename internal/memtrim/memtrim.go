// Package memtrim gives the heap's free memory back to the system once a
// burst of allocation is over.
//
// Viewers joining make pion allocate for every handshake; the heap grows to
// the collector's goal for that burst. Connected viewers then allocate
// next to nothing, so no collection runs again for minutes (Go forces one
// every two), the goal stays where the burst left it, and Go's background
// scavenger keeps everything under that goal: the process stays as large
// as during the joins. Run watches the bytes allocated: after a burst of
// at least burstBytes, the first quiet second (under quietBytes allocated)
// runs one collection and returns the free pages (debug.FreeOSMemory).
// A server that keeps allocating never has a quiet second and is left to
// Go's own pacing.
package memtrim

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	burstBytes = 32 << 20 // allocated since the last trim
	quietBytes = 1 << 20  // allocated in the last second, at most
	interval   = time.Second
)

// Run trims until ctx ends.
func Run(ctx context.Context, log *slog.Logger) {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	allocated := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	var w watch
	w.reset(allocated())
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !w.due(allocated()) {
			continue
		}
		start := time.Now()
		debug.FreeOSMemory()
		log.Debug("heap trimmed after a burst of allocation", "took", time.Since(start).String())
		w.reset(allocated())
	}
}

// watch decides when to trim from the running total of bytes allocated,
// sampled once per interval.
type watch struct {
	trimmed uint64 // the total at the last trim (or start)
	prev    uint64 // at the last sample
}

func (w *watch) reset(total uint64) { w.trimmed, w.prev = total, total }

// due reports whether a burst ended: at least burstBytes since the last
// trim, under quietBytes since the last sample.
func (w *watch) due(total uint64) bool {
	quiet := total-w.prev < quietBytes
	w.prev = total
	return quiet && total-w.trimmed >= burstBytes
}
