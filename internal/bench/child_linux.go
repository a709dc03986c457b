package bench

import "syscall"

// childAttr makes a server under test receive SIGTERM if this process dies
// first, so that no server outlives an interrupted comparison.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
