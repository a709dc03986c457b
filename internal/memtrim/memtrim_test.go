package memtrim

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

func TestWatch(t *testing.T) {
	var w watch
	w.reset(1000)
	steps := []struct {
		total uint64
		due   bool
	}{
		{1000 + quietBytes/2, false},               // quiet, no burst
		{1000 + burstBytes, false},                 // a burst, still going
		{1000 + 2*burstBytes, false},               // going on
		{1000 + 2*burstBytes + quietBytes/2, true}, // the first quiet second after it
	}
	for i, s := range steps {
		if got := w.due(s.total); got != s.due {
			t.Fatalf("step %d: due %v, want %v", i, got, s.due)
		}
	}
	w.reset(steps[len(steps)-1].total)
	if w.due(steps[len(steps)-1].total + quietBytes/2) {
		t.Fatal("due again right after a trim")
	}
	// A slow, steady allocator reaches burstBytes after a long while: one
	// trim then, not one per second.
	var n int
	total := uint64(0)
	w.reset(0)
	for range 200 {
		total += quietBytes / 2
		if w.due(total) {
			n++
			w.reset(total)
		}
	}
	if want := 200 / (2 * burstBytes / quietBytes); n != want {
		t.Fatalf("%d trims of a steady allocator in 200 samples, want %d", n, want)
	}
}

// TestRunReturnsMemory: after a burst of garbage, Run hands the free pages
// back to the system within a few quiet seconds.
func TestRunReturnsMemory(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); Run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))) }()

	var keep [][]byte
	for range 2 * burstBytes / (64 << 10) {
		keep = append(keep, make([]byte, 64<<10))
	}
	keep = nil
	var ms runtime.MemStats
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.ReadMemStats(&ms)
		if ms.HeapReleased >= burstBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d MiB released 10 s after a %d MiB burst, want at least %d", ms.HeapReleased>>20, 2*burstBytes>>20, burstBytes>>20)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	<-done
}
