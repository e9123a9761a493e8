package sim

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestScale runs one partitioned group of PARLEY_SCALE_MEMBERS members
// (skipped without it), for profiling the simulator at scale:
//
//	PARLEY_SCALE_MEMBERS=300 go test -run TestScale -v -cpuprofile cpu.out ./ordering/sim/
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("PARLEY_SCALE_MEMBERS"))
	if n == 0 {
		t.Skip("PARLEY_SCALE_MEMBERS not set")
	}
	cfg := DefaultConfig(1, n)
	cfg.Duration, cfg.Quiet = 12*time.Second, 20*time.Second
	cfg.MessageRate, cfg.OpRate = 0.001, 0.5
	cfg.Partitions = []Window{{At: 4 * time.Second, Until: 12 * time.Second}}
	start := time.Now()
	r := New(cfg).Run()
	m := r.Metrics
	t.Logf("%d members: %v wall; commits %d forks %d convergence %v rollback %d heads %d B envelopes %d bytes %d violations %v",
		n, time.Since(start), m.Commits, m.Forks, m.ConvergenceTime, m.MaxRollback, m.HeadBytes, m.Envelopes, m.Bytes, r.Violations)
}
