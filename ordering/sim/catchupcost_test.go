package sim

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestRemovedMemberStopsAsking: a removed member that keeps hearing the
// others' heads asks each of them once, is told (the removing commit
// once, bare refusals after), and then stops asking while their heads
// name the tips they refused it at: the same tip refuses again. It asked
// every member every SyncTimeout, for as long as it heard heads, and
// later each once per removedRecheck (ten SyncTimeouts), whatever the
// heads said. A refuser whose head names another tip is asked again after
// removedRecheck, and one that never moves after removedQuietRecheck
// (80 SyncTimeouts), for the case its heads cannot be verified.
func TestRemovedMemberStopsAsking(t *testing.T) {
	s := quietGroup(t, 17, 4)
	m0, m3 := s.byName["m0"], s.byName["m3"]
	m3.offline = true // it misses its removal, and learns it by asking
	s.handle(m0, ordering.RemoveMember{Identity: "m3"})
	s.advance(5 * time.Second)
	m3.offline = false
	heads := func() {
		for _, m := range []string{"m0", "m1", "m2"} {
			s.handle(s.byName[m], ordering.PeerJoined{})
		}
	}
	waitSim(t, s, 30*time.Second, "m3 learns it was removed", func() bool {
		heads()
		return m3.loop.Removed()
	})
	asked := func(d time.Duration) int {
		before := m3.loop.Stats().SyncRequests
		for end := s.now.Add(d); s.now.Before(end); {
			heads()
			s.advance(5 * time.Second)
		}
		return m3.loop.Stats().SyncRequests - before
	}
	// Heads keep coming: in the first minute m3 asks those that did not
	// refuse it yet, each once at most.
	first := asked(time.Minute)
	if first > 3 {
		t.Errorf("m3 sent %d requests in the minute after it knew it was removed, want at most 3 (one per other member)", first)
	}
	// Then three minutes (60 SyncTimeouts) of heads for the same tips:
	// nothing.
	after := asked(3 * time.Minute)
	if after != 0 {
		t.Errorf("m3 sent %d requests in the three minutes after every member had refused it, their tips unchanged; want none", after)
	}
	// m1 refreshes its keys: every head now names another tip, and m3
	// asks again, once per refuser, after removedRecheck at most.
	s.handle(s.byName["m1"], ordering.UpdateKeys{})
	s.advance(5 * time.Second)
	moved := asked(time.Minute)
	if moved == 0 || moved > 3 {
		t.Errorf("m3 sent %d requests in the minute after the refusers' tips moved, want 1-3", moved)
	}
	// And with nothing new, a re-check after removedQuietRecheck (four
	// minutes): within five, each member once at most.
	quiet := asked(5 * time.Minute)
	if quiet == 0 || quiet > 3 {
		t.Errorf("m3 sent %d requests in five quiet minutes, want 1-3 (the re-check for heads it cannot verify)", quiet)
	}
	if !m3.loop.Removed() {
		t.Error("m3 no longer holds itself removed")
	}
	t.Logf("requests: %d in the first minute, %d in the three after, %d after the tips moved, %d in five quiet minutes", first, after, moved, quiet)
}

// TestTextCatchUpCostsAboutWhatWasMissed: after a partition of a group of
// ten exchanging texts, catch-up (requests and answers) costs a small
// multiple of what the members missed. The fixed cost of requests used to
// dominate: 18.2 MB of catch-up for 1.45 MB missed over 20 seeds (12.5x),
// most of it requests for logs that brought nothing, asked again and
// again, removed members asking every member every SyncTimeout, and the
// same envelopes brought by several answers at once.
func TestTextCatchUpCostsAboutWhatWasMissed(t *testing.T) {
	syncBytes, missed, cost := catchUpCost(t, 5, func(seed uint64) Config {
		cfg := DefaultConfig(seed, 10)
		cfg.Partitions = []Window{{cfg.Duration / 3, cfg.Duration}}
		cfg.DiscardSnapshots = true
		return cfg
	})
	if missed == 0 {
		t.Fatal("nothing was missed: the scenario does not test catch-up")
	}
	ratio := float64(syncBytes) / float64(missed)
	t.Logf("catch-up %d bytes for %d missed (%.2fx): %+v", syncBytes, missed, ratio, cost)
	if ratio > 2.5 {
		t.Errorf("catch-up cost %.2fx what was missed, want at most 2.5x", ratio)
	}
	// Of the answers with envelopes (compared with all answers,
	// refusals among them, half of these were hidden), those that
	// brought nothing: not counting the joiners' one ask each for their
	// join epoch's log, nor the answers that left out what gossip was
	// bringing.
	if cost.Empty*4 > cost.OKAnswers {
		t.Errorf("%d of %d answers with envelopes brought nothing, want at most a quarter", cost.Empty, cost.OKAnswers)
	}
}

// TestMemberThatOnlyLacksIsNotAsked: a member back from being offline
// lacks two messages and holds nothing the others lack. It asks for them;
// the others, whose heads count more messages than its, do not ask it for
// logs that would bring nothing (they asked whenever the digests
// differed, each getting an empty answer).
func TestMemberThatOnlyLacksIsNotAsked(t *testing.T) {
	s := quietGroup(t, 21, 3)
	m0, m1, m2 := s.byName["m0"], s.byName["m1"], s.byName["m2"]
	m2.offline = true
	s.send(m0)
	s.send(m1)
	s.advance(2 * time.Second)
	m2.offline = false
	asked := map[*node]int{}
	for _, n := range []*node{m0, m1} {
		asked[n] = n.loop.Stats().SyncRequests
	}
	for range 6 {
		for _, n := range []*node{m0, m1, m2} {
			s.handle(n, ordering.PeerJoined{})
		}
		s.advance(5 * time.Second)
	}
	for id := range s.sent {
		if got := m2.delivered[id]; got != 1 {
			t.Errorf("m2 got message %v %d times, want once", id, got)
		}
	}
	for _, n := range []*node{m0, m1} {
		if got := n.loop.Stats().SyncRequests - asked[n]; got != 0 {
			t.Errorf("%s sent %d catch-up requests after m2 came back, want none: m2 held nothing it lacked", n.name, got)
		}
	}
}

// TestCatchUpOfABusyEpochNamesWhatIsHeldInAboutWhatIsMissed: in a group
// of ten where epochs last long and hold thousands of texts, members
// that crash or go offline for a while, and all of them after a
// partition, ask for what they lack while holding most of each epoch's
// log. A request used to list every envelope held of its newest epochs,
// 8 bytes each: at a hundred messages a second in a 100-member group that
// was most of catch-up (716 of 844 MB in one run of the large sweep).
// With sketches (see ordering's logSketch), what a request says it holds
// costs about what it lacks, and catch-up about what was missed.
func TestCatchUpOfABusyEpochNamesWhatIsHeldInAboutWhatIsMissed(t *testing.T) {
	if raceEnabled {
		t.Skip("CPU-bound simulation: CI runs it without the race detector")
	}
	syncBytes, missed, cost := catchUpCost(t, 3, func(seed uint64) Config {
		cfg := DefaultConfig(seed, 10)
		cfg.MessageRate, cfg.OpRate = 5, 0.05
		cfg.Duration = 40 * time.Second
		cfg.Partitions = []Window{{At: 25 * time.Second, Until: 35 * time.Second}}
		cfg.Crashes = []Window{{At: 8 * time.Second, Until: 14 * time.Second}}
		cfg.Offline = []Window{{At: 16 * time.Second, Until: 22 * time.Second}}
		return cfg
	})
	if missed == 0 || cost.Sketches == 0 {
		t.Fatalf("missed %d bytes, %d logs sketched: the scenario does not test sketches", missed, cost.Sketches)
	}
	ratio := float64(syncBytes) / float64(missed)
	t.Logf("catch-up %d bytes for %d missed (%.2fx); held lists %d bytes, %d sketches, %d relisted: %+v",
		syncBytes, missed, ratio, cost.HeldLogs, cost.Sketches, cost.Relists, cost)
	if cost.HeldLogs*4 > missed {
		t.Errorf("requests named what they held in %d bytes for %d missed, want at most a quarter", cost.HeldLogs, missed)
	}
	if ratio > 1.5 {
		t.Errorf("catch-up cost %.2fx what was missed, want at most 1.5x", ratio)
	}
	// A sketch that does not peel costs a round trip and a larger one:
	// the estimate of the difference, from the responder's last head,
	// misses what each side holds that the other lacks beyond the counts
	// (after the partition: 8 of 64 here; over 40 seeds, 176 of 1,252,
	// PARLEY_SIM_SEEDS=40).
	if cost.Relists*5 > cost.Sketches {
		t.Errorf("%d of %d sketches did not peel, want at most a fifth", cost.Relists, cost.Sketches)
	}
}

// catchUpCost runs seeds 1 to n (PARLEY_SIM_SEEDS, if set) of a
// scenario, fails the test on any violation, and sums what catch-up cost
// and brought: its bytes, the bytes its answers brought that their
// requesters had missed, and its parts.
func catchUpCost(t *testing.T, n uint64, mk func(seed uint64) Config) (syncBytes, missed int, cost ordering.SyncCost) {
	t.Helper()
	if v := os.Getenv("PARLEY_SIM_SEEDS"); v != "" {
		k, err := strconv.ParseUint(v, 10, 64)
		if err != nil || k == 0 {
			t.Fatalf("PARLEY_SIM_SEEDS: want a positive count, got %q", v)
		}
		n = k
	}
	for seed := uint64(1); seed <= n; seed++ {
		r := New(mk(seed)).Run()
		for _, v := range r.Violations {
			t.Errorf("seed %d: %s", seed, v)
		}
		syncBytes += r.Metrics.SyncBytes
		missed += r.Metrics.SyncMissed
		cost = cost.Add(r.Metrics.Sync)
	}
	return syncBytes, missed, cost
}
