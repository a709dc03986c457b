//go:build !linux

package transcode

import "time"

func threadCPU() (time.Duration, bool) { return 0, false }
