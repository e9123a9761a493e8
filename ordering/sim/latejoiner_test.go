package sim

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// lateJoinerCase shapes the late-joiner scenario: m4 joins a group of
// four; right after, m3 is cut off and sends sends messages on m4's join
// epoch (the first a file if file is set); the others make depth epochs,
// each with a message, so that m4's join epoch lies deeper than heads list
// one by one; then m3 meets member meets alone, and later everyone.
type lateJoinerCase struct {
	seed  uint64
	depth uint64
	sends int
	meets string
	file  bool
}

// lateJoiner is the case seed draws: 16-31 epochs, 1-4 messages, a file in
// a third of the seeds, m3 meeting one of m0-m2.
func lateJoiner(seed uint64) []string {
	return lateJoinerRun(lateJoinerCase{seed: seed, depth: 16 + seed%16, sends: 1 + int(seed%4), meets: fmt.Sprintf("m%d", seed%3), file: seed%3 == 0})
}

// lateJoinerRun runs a late-joiner case. m4 must get m3's messages exactly
// once, though it cannot tell from its own span that it lacks them. It
// returns what went wrong.
func lateJoinerRun(c lateJoinerCase) []string {
	seed, depth, sends, meets, withFile := c.seed, c.depth, c.sends, c.meets, c.file
	cfg := DefaultConfig(seed, 4)
	cfg.OpRate, cfg.MessageRate, cfg.DropRate = 0, 0, 0
	cfg.Ordering.Retention = 64
	cfg.Duration = 100 * time.Second
	cfg.Quiet = 30 * time.Second
	s := New(cfg)
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	var fromM3 []ordering.MessageID
	var joinEpoch uint64
	r := s.run(func() {
		m0, m3 := s.byName["m0"], s.byName["m3"]
		var joiner *node
		s.schedule(s.start.Add(time.Second), -1, nil, func() {
			joiner = s.newNode("m4")
			joiner.bundle = s.bundleFor(joiner)
			s.handle(m0, ordering.AddMember{KeyPackage: keyPackageMessage(joiner.bundle)})
		})
		s.schedule(s.start.Add(5*time.Second), -1, nil, func() {
			if joiner.loop == nil || joiner.loop.Tip().ID != m3.loop.Tip().ID {
				fail("m4 has not joined on m3's epoch after 4 s")
				return
			}
			joinEpoch = joiner.loop.Tip().Number
			m3.side = 1
			for i := range sends {
				s.schedule(s.now.Add(time.Duration(i+1)*300*time.Millisecond), -1, nil, func() {
					if withFile && i == 0 {
						s.sendFile(m3)
					} else {
						s.send(m3)
					}
				})
			}
			s.schedule(s.now.Add(3*time.Second), -1, nil, func() {
				for id, sm := range s.sent {
					if sm.from == "m3" && !slices.Contains(fromM3, id) {
						fromM3 = append(fromM3, id)
					}
				}
			})
		})
		var drive func()
		drive = func() {
			if joiner == nil || joiner.loop == nil {
				return
			}
			others := []*node{s.byName["m0"], s.byName["m1"], s.byName["m2"], joiner}
			if others[0].loop.Tip().Number >= joinEpoch+depth {
				m3.side, m3.only = 0, map[string]bool{meets: true}
				s.schedule(s.now.Add(15*time.Second), -1, nil, func() { m3.only = nil })
				return
			}
			s.handle(others[s.rng.IntN(len(others))], ordering.UpdateKeys{})
			s.schedule(s.now.Add(time.Second), -1, nil, func() { s.send(others[s.rng.IntN(len(others))]) })
			s.schedule(s.now.Add(2*time.Second), -1, nil, drive)
		}
		s.schedule(s.start.Add(7*time.Second), -1, nil, drive)
	})
	problems = append(problems, r.Violations...)
	if len(fromM3) < sends || (!withFile && len(fromM3) != sends) {
		fail("m3 sent %d messages on epoch %d, want at least %d", len(fromM3), joinEpoch, sends)
	}
	if got := r.Metrics.FinalEpoch; got < joinEpoch+depth {
		fail("the group ended on epoch %d, want at least %d", got, joinEpoch+depth)
	}
	for _, id := range fromM3 {
		if m4 := s.byName["m4"]; m4 != nil && m4.delivered[id] != 1 {
			fail("m4 got m3's message %v %d times, want once", id, m4.delivered[id])
		}
	}
	return problems
}

// TestLateJoinersGetWhatWasSentAcrossAPartition runs lateJoiner over many
// seeds: the depth of the join epoch, the number of messages, a file among
// them, and the member m3 meets first vary.
func TestLateJoinersGetWhatWasSentAcrossAPartition(t *testing.T) {
	if raceEnabled {
		t.Skip("CPU-bound simulation: CI runs it without the race detector")
	}
	failed := 0
	list := seeds(t, 10)
	for _, seed := range list {
		problems := lateJoiner(seed)
		if len(problems) == 0 {
			continue
		}
		failed++
		for _, p := range problems[:min(5, len(problems))] {
			t.Errorf("seed %d: %s", seed, p)
		}
		t.Errorf("seed %d failed; replay with PARLEY_SIM_SEED=%d go test -run '^%s$' ./ordering/sim/", seed, seed, t.Name())
	}
	t.Logf("%d seeds, %d failed", len(list), failed)
}
