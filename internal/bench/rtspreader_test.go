package bench

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"
)

// TestRunRTSPReaders: a small run with RTSP readers of an in-process
// sluice reports what the WHEP run does: every reader connected, got a
// keyframe and stamps, packets of video and audio, no loss; it asserts
// nothing about speed.
func TestRunRTSPReaders(t *testing.T) {
	srv := startSluiceServer(t)
	base := "http://" + srv.HTTPAddr().String()
	var progress bytes.Buffer
	cfg := Config{
		WHIP:     base + "/whip/bench",
		RTSP:     "rtsp://" + srv.RTSPAddr().String() + "/bench",
		Viewers:  3,
		Batch:    2,
		Lead:     time.Second,
		Warmup:   500 * time.Millisecond,
		Duration: 3 * time.Second,
		Timeout:  15 * time.Second,
		Media:    MediaConfig{VideoBitrate: 1_000_000},
		PID:      os.Getpid(),
		Progress: &progress,
	}
	ctx, cancel := context.WithTimeout(t.Context(), cfg.MaxRunTime())
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, progress.String())
	}
	if rep.RTSP != cfg.RTSP {
		t.Errorf("report RTSP %q, want %q", rep.RTSP, cfg.RTSP)
	}
	v := rep.Viewers
	if v.Requested != 3 || v.Connected != 3 || v.Failed != 0 || v.EndedEarly != 0 || v.WithKeyframe != 3 {
		t.Errorf("readers %+v", v)
	}
	d := rep.Delivery
	if d.PacketsPerS <= 0 || d.Expected <= 0 || d.LossPercent > 1 {
		t.Errorf("delivery %+v", d)
	}
	// Every reader gets video and audio: about every packet sent, per
	// reader (only a gross error fails).
	if d.Ratio < 0.5 || d.Ratio > 2 {
		t.Errorf("delivery ratio %.3f, want about 1", d.Ratio)
	}
	if rep.Setup.N != 3 || rep.TTFF.N != 3 || rep.Latency.N == 0 || d.Stamps != rep.Latency.N {
		t.Errorf("samples: setup %d, ttff %d, latency %d, stamps %d", rep.Setup.N, rep.TTFF.N, rep.Latency.N, d.Stamps)
	}
	if s := rep.Server; s == nil || s.CPUUsPerPacket <= 0 {
		t.Errorf("server %+v", s)
	}

	// A stream that is not there: the readers retry on 404 until the
	// timeout, then fail, and Run says no viewer connected.
	cfg.RTSP += "-none"
	cfg.Viewers, cfg.Timeout, cfg.Duration = 1, 2*time.Second, time.Second
	ctx2, cancel2 := context.WithTimeout(t.Context(), cfg.MaxRunTime())
	defer cancel2()
	rep, err = Run(ctx2, cfg)
	if err == nil || rep == nil || rep.Viewers.Failed != 1 {
		t.Errorf("reading a missing stream: %v, report %+v", err, rep)
	}
}
