package sim

import (
	"testing"
	"time"
)

// TestDeliveredIDsAreForgottenWithTheirEpochs: in a long conversation
// with short retention, the ids a member keeps to refuse copies of
// delivered messages stay bounded by the retained epochs, not by the whole
// history, while every message is still delivered exactly once; and the
// heads of members removed before the retained epochs are forgotten.
func TestDeliveredIDsAreForgottenWithTheirEpochs(t *testing.T) {
	if raceEnabled {
		t.Skip("a minute of CPU-bound simulation: CI runs it without the race detector")
	}
	cfg := DefaultConfig(3, 5)
	cfg.Ordering.Retention = 4
	cfg.MessageRate, cfg.OpRate = 1, 1
	cfg.Duration = time.Minute
	s := New(cfg)
	r := s.Run()
	for _, v := range r.Violations {
		t.Error(v)
	}
	if r.Metrics.Commits < 40 {
		t.Fatalf("only %d commits: the run does not go past retention often enough to test it", r.Metrics.Commits)
	}
	sent := 0
	for _, n := range s.nodes {
		if n.loop != nil {
			sent += n.loop.Stats().AppSent
		}
	}
	t.Logf("%d commits, %d messages sent", r.Metrics.Commits, sent)
	for _, n := range s.nodes {
		if n.loop == nil || n.loop.Removed() {
			continue
		}
		t.Logf("%s remembers %d delivered ids", n.name, n.loop.DeliveredLen())
		// Without forgetting, it would be nearly every message sent; the
		// last 2×Retention epochs hold about a third of them.
		if got := n.loop.DeliveredLen(); got > sent/2 {
			t.Errorf("%s remembers %d delivered ids of %d messages sent", n.name, got, sent)
		}
		if stray := n.loop.StrayVotes(); stray > 0 {
			t.Errorf("%s holds the heads of %d identities that are members of none of its epochs", n.name, stray)
		}
	}
	t.Logf("%d identities ever, %d members at the end", len(s.nodes), r.Metrics.FinalMembers)
	if len(s.nodes) <= r.Metrics.FinalMembers {
		t.Fatalf("%d identities ever, %d members at the end: nobody was removed, so no head had to be forgotten", len(s.nodes), r.Metrics.FinalMembers)
	}
}

// TestSavedMessagesLeaveMemory: with SpillSize 1 every application message
// leaves a member's memory once saved; through a partition and crashes,
// re-sends and catch-up read them back from the store, and every property
// still holds. (The same seeds give the same figures with or without
// spilling: compare `parley sim` output across the change.)
func TestSavedMessagesLeaveMemory(t *testing.T) {
	for _, seed := range seeds(t, 6) {
		cfg := DefaultConfig(seed, 8)
		cfg.Partitions = []Window{{At: 5 * time.Second, Until: 15 * time.Second}}
		cfg.Crashes = []Window{{At: 8 * time.Second, Until: 20 * time.Second}}
		cfg.MessageRate = 0.5
		s := New(cfg)
		r := s.Run()
		for _, v := range r.Violations {
			t.Errorf("seed %d: %s", seed, v)
		}
		reads := 0
		for _, n := range s.nodes {
			reads += n.store.reads
			if n.loop == nil || !n.up {
				continue
			}
			if b := n.loop.HeldBytes(); b > 0 {
				t.Errorf("seed %d: %s holds %d bytes of saved messages in memory", seed, n.name, b)
			}
		}
		if reads == 0 {
			t.Errorf("seed %d: no member read a message back from its store: the run tests nothing", seed)
		}
		t.Logf("seed %d: %d messages, %d reads from the store", seed, r.Metrics.AppMessages, reads)
	}
}
