//go:build unix

package node

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user and system) this process has used: a
// throughput run's CPU per message is that of every member (or host) of
// its cluster, all in this process, with the benchmark's own.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
