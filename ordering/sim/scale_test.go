package sim

import (
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"
)

// TestScale runs one partitioned group of PARLEY_SCALE_MEMBERS members
// (skipped without it), for profiling the simulator at scale
// (PARLEY_SCALE_OPRATE sets the membership changes per second, and
// PARLEY_SCALE_HEAP a file for a heap profile taken at the end of the run):
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
	if v := os.Getenv("PARLEY_SCALE_OPRATE"); v != "" {
		cfg.OpRate, _ = strconv.ParseFloat(v, 64)
	}
	start := time.Now()
	s := New(cfg)
	r := s.Run()
	m := r.Metrics
	if path := os.Getenv("PARLEY_SCALE_HEAP"); path != "" {
		// What the members hold at the end of the run.
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		runtime.GC()
		if err := pprof.WriteHeapProfile(f); err != nil {
			t.Fatal(err)
		}
		f.Close()
		runtime.KeepAlive(s)
	}
	for _, v := range r.Violations {
		t.Error(v)
	}
	t.Logf("%d members: %v wall; commits %d forks %d convergence %v rollback %d heads %d B envelopes %d bytes %d (sync %d) violations %v",
		n, time.Since(start), m.Commits, m.Forks, m.ConvergenceTime, m.MaxRollback, m.HeadBytes, m.Envelopes, m.Bytes, m.SyncBytes, r.Violations)
}
