package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestForkChoiceDependsOnlyOnTheMessagesSeen records everything a passive
// member (one that sends nothing and never commits) received in a run with
// concurrent commits, then feeds the same messages to copies of it
// (restored from what it saved when the run began) in the order it got
// them and in shuffled orders, with duplicates, with no timers running:
// every copy ends on the same epoch, the one the member chose.
func TestForkChoiceDependsOnlyOnTheMessagesSeen(t *testing.T) {
	cfg := DefaultConfig(3, 6)
	cfg.OpRate = 2
	cfg.MessageRate = 0.3
	cfg.DropRate = 0 // every message arrives by gossip, none only by sync
	cfg.Duration, cfg.Quiet = 15*time.Second, 15*time.Second
	cfg.Ordering.CommitBackoff = 50 * time.Millisecond
	cfg.Ordering.MaxBuffered = 1 << 20
	s := New(cfg)
	var start *ordering.Saved
	var seen []ordering.Inbound
	r := s.run(func() {
		m1 := s.byName["m1"]
		m1.passive = true
		m1.cfg.CommitDelay = time.Hour
		m1.loop = restoreWith(t, m1.cfg, m1.store.saved(), s.now)
		start = m1.store.saved()
		s.onHandle = func(n *node, ev ordering.Event) {
			if in, ok := ev.(ordering.Inbound); ok && n == m1 {
				seen = append(seen, in)
			}
		}
	})
	for _, v := range r.Violations {
		t.Error(v)
	}
	if r.Metrics.Forks == 0 {
		t.Fatalf("no forks in %d commits: the scenario does not test the fork choice", r.Metrics.Commits)
	}
	want := s.byName["m1"].loop.Tip()
	t.Logf("%d messages seen, %d commits, %d forks; m1 ends on epoch %d", len(seen), r.Metrics.Commits, r.Metrics.Forks, want.Number)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 6 {
		order := make([]ordering.Inbound, len(seen))
		copy(order, seen)
		if round > 0 {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		if round%2 == 1 {
			// Every message twice, the copies anywhere.
			order = append(order, seen...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		c := s.nodeConfig()
		c.CommitDelay = time.Hour
		loop := restoreWith(t, c, start, s.now)
		// An envelope whose author is not yet a member of an epoch the
		// copy holds (a member added by a commit it has not seen yet) is
		// dropped, not buffered, and comes again by catch-up in a run:
		// here, the same messages again until nothing changes.
		for pass := 0; pass < 8; pass++ {
			before := loop.Stats().Ignored
			for _, in := range order {
				loop.Handle(s.now, in)
			}
			if loop.Stats().Ignored == before {
				break
			}
		}
		if got := loop.Tip(); got.ID != want.ID {
			t.Errorf("order %d: ends on epoch %d %v, the member chose %d %v", round, got.Number, got.ID, want.Number, want.ID)
		}
	}
}

func restoreWith(t *testing.T, c ordering.Config, saved *ordering.Saved, now time.Time) *ordering.Loop {
	t.Helper()
	loop, err := ordering.Restore(c, saved, now)
	if err != nil {
		t.Fatal(err)
	}
	return loop
}

// TestRunsAreReproducible: the same seed gives the same run, to the byte.
func TestRunsAreReproducible(t *testing.T) {
	runOnce := func() *Result {
		cfg := partitionScenario(5)
		cfg.Duration, cfg.Quiet = 20*time.Second, 20*time.Second
		return New(cfg).Run()
	}
	a, b := runOnce(), runOnce()
	if a.Tip != b.Tip || a.Metrics.Bytes != b.Metrics.Bytes || a.Metrics.Envelopes != b.Metrics.Envelopes ||
		a.Metrics.Commits != b.Metrics.Commits || a.Metrics.Forks != b.Metrics.Forks || a.Metrics.Rollbacks != b.Metrics.Rollbacks {
		t.Errorf("two runs of one seed differ:\n%+v %v\n%+v %v", a.Metrics, a.Tip, b.Metrics, b.Tip)
	}
	if a.Metrics.Commits == 0 || a.Tip.IsZero() {
		t.Errorf("the run did nothing: %+v", a.Metrics)
	}
	// A commit is at least its signature and the epoch it names.
	if a.Metrics.CommitBytes < 100*a.Metrics.Commits || a.Metrics.CommitBytes > a.Metrics.Bytes {
		t.Errorf("%d bytes of commits for %d commits (%d bytes in all)", a.Metrics.CommitBytes, a.Metrics.Commits, a.Metrics.Bytes)
	}
	t.Logf("%d commits, %d bytes each on average", a.Metrics.Commits, a.Metrics.CommitBytes/max(1, a.Metrics.Commits))
}
