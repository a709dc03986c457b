//go:build !cgo

package snapshot

import "fmt"

// Available reports that a binary built without cgo makes no snapshots.
func Available() error {
	return fmt.Errorf("%w: built without cgo", ErrUnavailable)
}

func encodeJPEG(bool, []byte, int) ([]byte, int, int, error) { return nil, 0, 0, Available() }
