// Package hls serves live streams as Low-Latency HLS (fMP4 segments and
// parts, blocking playlist reloads), muxed by bluenviron/gohlslib: H264,
// H265, VP9 or AV1 video as published, Opus audio transcoded to AAC-LC.
//
// A stream is muxed on its first HLS request (or from its publication with
// Config.Always) by one goroutine that reads its own hub cursor
// (internal/tap), so the cost is per stream and never per player, and the
// publisher never waits for it. The muxer stops when the stream ends, or
// after Config.CloseAfter without requests.
package hls

import (
	"errors"
	"time"

	"github.com/sluice-media/sluice/internal/tap"
)

// Errors Serve returns; the HTTP edge maps them to status codes.
var (
	// ErrNotReady means the first segment was not complete in time
	// (the publisher sends no keyframe, or no media).
	ErrNotReady = errors.New("HLS stream not ready")
	// ErrClosed means the server is shutting down.
	ErrClosed = errors.New("HLS server closed")
	// ErrNoFile means the muxer has no such playlist, segment or part
	// (any more).
	ErrNoFile = errors.New("no such HLS file")
)

// Config configures LL-HLS. The zero value is completed by New with the
// defaults below.
type Config struct {
	// Always muxes every stream from its publication on, so that the
	// first player starts at once; otherwise a stream is muxed from its
	// first request (which then waits for one segment).
	Always bool
	// SegmentDuration is the shortest segment; a segment ends at the
	// first keyframe after it (default 1s).
	SegmentDuration time.Duration
	// PartDuration is the LL-HLS part duration (default 200ms).
	PartDuration time.Duration
	// SegmentCount is how many segments the playlist holds, 7 or more
	// (default 7).
	SegmentCount int
	// CloseAfter stops a muxer that got no request for this long
	// (default 1m); it does not apply with Always.
	CloseAfter time.Duration
	// StartTimeout bounds how long a request waits for a stream's first
	// segment (default 5s plus two segment durations).
	StartTimeout time.Duration
	// Taps shares each stream's reading and transcoding with the other
	// outputs (recording); nil gives the server a pool of its own.
	Taps *tap.Pool
}

func (c *Config) defaults() {
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = time.Second
	}
	if c.PartDuration <= 0 {
		c.PartDuration = 200 * time.Millisecond
	}
	if c.SegmentCount < 7 {
		c.SegmentCount = 7
	}
	if c.CloseAfter <= 0 {
		c.CloseAfter = time.Minute
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 5*time.Second + 2*c.SegmentDuration
	}
}
