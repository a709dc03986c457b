package transcode

import (
	"syscall"
	"time"
)

// threadCPU returns the CPU time of the calling thread; the benchmarks
// lock their goroutine to one thread, so that the cgo calls count too and
// other processes on a busy machine do not.
func threadCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
