package ingest

import (
	"time"

	"github.com/sluice-media/sluice/internal/reorder"
)

// NACK bounds: a gap is NACKed when it appears and again every quarter of
// the reorder window's delay, within these bounds, until it is filled or
// given up.
const (
	minNACKRetry = 10 * time.Millisecond
	maxNACKRetry = 100 * time.Millisecond
	// maxNACKSeqs bounds one NACK (at most this many 4-byte pairs, so it
	// fits a packet); the rest go out at the next retry.
	maxNACKSeqs = 256
)

// Options is how every inbound track of a server behaves, built once from
// the configuration and shared by all sources.
type Options struct {
	// Reorder bounds each track's reorder window (zero fields take the
	// reorder package's defaults: 64 packets, 100 ms).
	Reorder reorder.Config
	// PLIInterval, if not 0, asks a sender for a keyframe when a video
	// track has sent none for this long.
	PLIInterval time.Duration
}

// nackRetry is how long a NACKed gap waits before it is NACKed again: a
// quarter of the reorder delay, within [minNACKRetry, maxNACKRetry].
func (o Options) nackRetry() time.Duration {
	delay := o.Reorder.MaxDelay
	if delay <= 0 {
		delay = reorder.DefaultMaxDelay
	}
	return min(max(delay/4, minNACKRetry), maxNACKRetry)
}

// Counter is a metric a track increments (a prometheus.Counter).
type Counter interface{ Inc() }
