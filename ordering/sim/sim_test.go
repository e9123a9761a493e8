package sim

import (
	"testing"
	"time"
)

func TestQuietGroupConverges(t *testing.T) {
	cfg := DefaultConfig(1, 5)
	cfg.Duration = 20 * time.Second
	cfg.Quiet = 20 * time.Second
	s := New(cfg)
	s.SetLogger(t.Logf)
	r := s.Run()
	for _, v := range r.Violations {
		t.Error(v)
	}
	m := r.Metrics
	t.Logf("epoch %d, %d members, %d commits, %d forks, %d rollbacks (max %d), %d app messages, convergence %v, p50 %v p99 %v",
		m.FinalEpoch, m.FinalMembers, m.Commits, m.Forks, m.Rollbacks, m.MaxRollback, m.AppMessages, m.ConvergenceTime, m.Latency(50), m.Latency(99))
}
