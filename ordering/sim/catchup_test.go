package sim

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// catchUp is a group of five in which m4 goes offline while the others
// commit the given number of times (and keep talking), then comes back
// able to reach only helper. It returns what m4 had when the run was
// about to heal, before any other member could reach it.
type catchUp struct {
	epochs, retention int
	helper            string
	// sendBeforeLeaving has m4 send a message just before it goes offline
	// (its id in lastWord).
	sendBeforeLeaving bool
	// restartOthers crashes and restarts the other members from what they
	// saved 3 epochs after m4 left, long before they forget its message.
	restartOthers bool

	lastWord ordering.MessageID

	// Filled in by the run.
	s              *Sim
	r              *Result
	victimTip      ordering.EpochID
	helperTip      ordering.EpochID
	missing        []string // messages m4 should have had by then and did not
	backAt, leftAt uint64   // the epoch m4 left on and came back to
}

func (c *catchUp) run(seed uint64) {
	cfg := DefaultConfig(seed, 5)
	cfg.OpRate = 0
	cfg.MessageRate = 0.3
	cfg.DropRate = 0
	cfg.Ordering.Retention = c.retention
	cfg.Duration = time.Duration(3*c.epochs+30) * time.Second
	cfg.Quiet = 20 * time.Second
	s := New(cfg)
	c.s = s
	c.r = s.run(func() {
		victim, helper := s.byName["m4"], s.byName[c.helper]
		if c.sendBeforeLeaving {
			s.schedule(s.start.Add(time.Second-50*time.Millisecond), -1, nil, func() {
				s.send(victim)
				for id, sm := range s.sent {
					if sm.from == victim.name && sm.at.Equal(s.now) {
						c.lastWord = id
					}
				}
			})
		}
		s.schedule(s.start.Add(time.Second), -1, nil, func() {
			victim.offline = true
			c.leftAt = victim.loop.Tip().Number
		})
		// While m4 is away, a random other member refreshes its keys each
		// second until the group is the given number of epochs ahead;
		// then m4 comes back.
		var sentBefore []ordering.MessageID
		restarted := false
		var drive func()
		drive = func() {
			if c.restartOthers && !restarted && helper.loop.Tip().Number == c.leftAt+3 {
				restarted = true
				for _, n := range s.nodes {
					if n != victim && n.up {
						n.up, n.loop = false, nil
						s.restart(n)
					}
				}
			}
			if helper.loop.Tip().Number < c.leftAt+uint64(c.epochs) {
				actors := []*node{}
				for _, n := range s.liveMembers() {
					if n != victim {
						actors = append(actors, n)
					}
				}
				s.handle(actors[s.rng.IntN(len(actors))], ordering.UpdateKeys{})
				s.schedule(s.now.Add(time.Second), -1, nil, drive)
				return
			}
			victim.offline = false
			victim.only = map[string]bool{c.helper: true}
			for id, sm := range s.sent {
				if sm.from != victim.name {
					sentBefore = append(sentBefore, id)
				}
			}
		}
		s.schedule(s.start.Add(2*time.Second), -1, nil, drive)
		s.schedule(s.start.Add(cfg.Duration-time.Millisecond), -1, nil, func() {
			c.victimTip, c.helperTip = victim.loop.Tip().ID, helper.loop.Tip().ID
			c.backAt = victim.loop.Tip().Number
			for _, id := range sentBefore {
				if victim.delivered[id] != 1 && !victim.reportedMissing(s.epochs[s.copies[id][0]].Number) {
					c.missing = append(c.missing, fmt.Sprintf("%v from %s: %d times", id, s.sent[id].from, victim.delivered[id]))
				}
			}
		})
	})
}

// TestOfflineMemberCatchesUpFromAnySingleMember: a member offline for 50
// epochs catches up, with every message it missed, from whichever single
// member it can reach.
func TestOfflineMemberCatchesUpFromAnySingleMember(t *testing.T) {
	for i, helper := range []string{"m0", "m1", "m2", "m3"} {
		t.Run(helper, func(t *testing.T) {
			if (testing.Short() || raceEnabled) && i > 0 {
				t.Skip("one helper in short mode and under the race detector")
			}
			seed := uint64(100 + i)
			c := &catchUp{epochs: 50, retention: 64, helper: helper}
			c.run(seed)
			for _, v := range c.r.Violations {
				t.Errorf("seed %d: %s", seed, v)
			}
			if c.victimTip != c.helperTip {
				t.Errorf("seed %d: m4 is not on %s's epoch before the network heals", seed, helper)
			}
			if c.backAt < c.leftAt+50 {
				t.Errorf("seed %d: m4 went from epoch %d to %d, want at least 50 epochs", seed, c.leftAt, c.backAt)
			}
			for _, m := range c.missing {
				t.Errorf("seed %d: m4 missed message %s", seed, m)
			}
			if c.r.Metrics.Rejoins != 0 {
				t.Errorf("seed %d: %d rejoins, want catch-up without one", seed, c.r.Metrics.Rejoins)
			}
		})
	}
}

// TestMemberOfflineBeyondRetentionRejoinsAndReportsTheGap: a member
// offline for longer than the retained history rejoins by external commit
// through the one member it reaches and reports the epochs it missed.
func TestMemberOfflineBeyondRetentionRejoinsAndReportsTheGap(t *testing.T) {
	const seed = 7
	c := &catchUp{epochs: 40, retention: 16, helper: "m2"}
	c.run(seed)
	for _, v := range c.r.Violations {
		t.Errorf("seed %d: %s", seed, v)
	}
	if c.victimTip != c.helperTip {
		t.Errorf("m4 is not on m2's epoch before the network heals")
	}
	victim := c.s.byName["m4"]
	if c.r.Metrics.Rejoins != 1 || len(victim.missed) != 1 {
		t.Fatalf("%d rejoins, m4 reported %v; want one rejoin by m4", c.r.Metrics.Rejoins, victim.missed)
	}
	gap := victim.missed[0]
	if gap[0] > c.leftAt || gap[1] < c.leftAt+uint64(c.epochs)-uint64(c.retention) {
		t.Errorf("m4 reported missing epochs %d-%d; it left at %d and the others made %d epochs with %d retained", gap[0], gap[1], c.leftAt, c.epochs, c.retention)
	}
	for _, m := range c.missing {
		t.Errorf("m4 missed message %s outside the reported range", m)
	}
	t.Logf("m4 left at epoch %d, rejoined reporting %d-%d missed, was at %d before the heal", c.leftAt, gap[0], gap[1], c.backAt)
}

// TestAMessageSentJustBeforeALongAbsenceIsDeliveredOnce: m4 sends a
// message and goes offline 50 ms later, before its epoch is final at m4;
// the others get it, then make 40 epochs with 16 retained, and forget its
// id with the epochs it could have a copy in. m4 comes back beyond their
// retention, rejoins by external commit, and re-sends what its outbox
// holds, that message among them, on the new epoch: the others must know
// it for one they delivered, though its id is gone, also when they
// restarted in between (what tells them is saved).
func TestAMessageSentJustBeforeALongAbsenceIsDeliveredOnce(t *testing.T) {
	for _, seed := range seeds(t, 8) {
		c := &catchUp{epochs: 40, retention: 16, helper: "m2", sendBeforeLeaving: true, restartOthers: seed%2 == 0}
		c.run(seed)
		for _, v := range c.r.Violations {
			t.Errorf("seed %d: %s", seed, v)
		}
		if c.lastWord == (ordering.MessageID{}) {
			t.Fatalf("seed %d: m4 sent nothing before leaving", seed)
		}
		if c.r.Metrics.Rejoins != 1 {
			t.Errorf("seed %d: %d rejoins, want m4's", seed, c.r.Metrics.Rejoins)
		}
		if n := len(c.s.copies[c.lastWord]); n < 2 {
			t.Errorf("seed %d: m4's last word went out %d times, want again after the rejoin", seed, n)
		}
		for _, name := range []string{"m0", "m1", "m2", "m3"} {
			if got := c.s.byName[name].delivered[c.lastWord]; got != 1 {
				t.Errorf("seed %d: %s got m4's last word %d times", seed, name, got)
			}
		}
	}
}

// TestLateJoinerGetsWhatWasSentInItsFirstEpochAcrossAPartition: m4 joins
// on epoch E; m3, cut off, sends on E while the others make more than
// logDigests epochs with messages. m3 then catches up from m1 alone (m1
// takes m3's messages in return) before everyone meets. m4's heads cover
// less history than the others' (it holds nothing before E), and E is
// deeper than the epochs a head lists one by one: m4 must still find out
// that it lacks m3's messages on E and fetch them.
func TestLateJoinerGetsWhatWasSentInItsFirstEpochAcrossAPartition(t *testing.T) {
	for _, p := range lateJoinerRun(lateJoinerCase{seed: 11, depth: 24, sends: 3, meets: "m1"}) {
		t.Error(p)
	}
}

// TestMemberThatRejoinedOntoALosingBranchComesBack: m6 goes offline; the
// group makes 6 epochs; a partition splits m4 and m5 off, and both sides
// commit (m0-m3 once, m4 and m5 six times). m6 comes back reaching only
// m4 and m5, whose retention (8 epochs) no longer covers its epochs: it
// rejoins by external commit on their branch, so its history starts above
// the fork. Then m4 and m5 go away (until the run's end) and the partition
// heals: m0-m3's branch is the group's (4 of the fork point's 7 members),
// but m6 holds nothing below the fork and cannot see that branch, and
// nobody left holds m6's epochs to tell it that they lost. It must find
// that the rest of its epoch has left its history (their heads name
// epochs below its root that it does not hold) and rejoin where they are;
// and m0-m3, whose epochs m6 does not hold either, must not follow m6.
func TestMemberThatRejoinedOntoALosingBranchComesBack(t *testing.T) {
	const seed = 5
	s, r, rejoined, leftAt, fork, backInTime := runAbandoned(t, seed, false)
	for _, v := range r.Violations {
		t.Errorf("seed %d: %s", seed, v)
	}
	x := s.byName["m6"]
	if rejoined == 0 {
		t.Fatalf("m6 never rejoined on m4 and m5's branch (left at epoch %d, fork at %d)", leftAt, fork)
	}
	if rejoined <= fork {
		t.Fatalf("m6 rejoined on epoch %d, not above the fork at %d", rejoined, fork)
	}
	if x.loop.Tip().ID != s.byName["m0"].loop.Tip().ID {
		t.Errorf("m6 ended on epoch %d, m0 on %d", x.loop.Tip().Number, s.byName["m0"].loop.Tip().Number)
	}
	if !backInTime {
		t.Errorf("m6 was not on m0's epoch before m4 and m5, who hold its epochs, came back")
	}
	if x.loop.Stats().AbandonAsks == 0 {
		t.Errorf("m6 never asked for a way back from its abandoned history")
	}
	t.Logf("m6 left at epoch %d, fork at %d, rejoined at %d on the losing branch; ended on %d after %d rejoins",
		leftAt, fork, rejoined, x.loop.Tip().Number, x.loop.Stats().Rejoin)
}

// TestRemovedMembersHistoryDoesNotTakeTheGroup: as above, but the one
// commit m0-m3 make during the partition removes m6. m6's abandoned
// history still names m0-m3 as members: they hear its heads, ask it, and
// it answers with a GroupInfo of its history (syncOlder: their epochs are
// older than its root). They must not rejoin that history, which their
// own, alive and agreed among them, has left; and m6, refused by them,
// must find that it is out.
func TestRemovedMembersHistoryDoesNotTakeTheGroup(t *testing.T) {
	const seed = 5
	s, r, rejoined, leftAt, fork, _ := runAbandoned(t, seed, true)
	for _, v := range r.Violations {
		t.Errorf("seed %d: %s", seed, v)
	}
	if rejoined <= fork {
		t.Fatalf("m6 rejoined on epoch %d, not above the fork at %d (left at %d)", rejoined, fork, leftAt)
	}
	for i := range 4 {
		n := s.byName[fmt.Sprintf("m%d", i)]
		if got := n.loop.Stats().Rejoin; got != 0 {
			t.Errorf("%s rejoined %d times, onto the removed member's history", n.name, got)
		}
	}
	if x := s.byName["m6"]; !x.loop.Removed() {
		t.Errorf("m6 does not know it was removed (on epoch %d)", x.loop.Tip().Number)
	}
}

// runAbandoned runs the scenario of the two tests above; removeOnA makes
// m0-m3's one commit during the partition remove m6.
func runAbandoned(t *testing.T, seed uint64, removeOnA bool) (s *Sim, r *Result, rejoined, leftAt, fork uint64, backInTime bool) {
	t.Helper()
	cfg := DefaultConfig(seed, 7)
	cfg.OpRate, cfg.DropRate = 0, 0
	cfg.MessageRate = 0.1
	cfg.Ordering.Retention = 8
	cfg.Duration = 120 * time.Second
	cfg.Quiet = 60 * time.Second
	s = New(cfg)
	if os.Getenv("PARLEY_TRACE_TEST") != "" {
		s.SetLogger(t.Logf)
	}
	r = s.run(func() {
		name := func(i int) *node { return s.byName[fmt.Sprintf("m%d", i)] }
		x := name(6)
		// Whether m6 is on m0's epoch before m4 and m5 come back (the run
		// heals everything at its end).
		s.schedule(s.start.Add(cfg.Duration-time.Millisecond), -1, nil, func() {
			backInTime = x.loop.Tip().ID == name(0).loop.Tip().ID
		})
		// drive has a random one of members refresh its keys every 1.5 s
		// until members[0] is on epoch target, then calls next.
		var drive func(members []*node, target uint64, next func())
		drive = func(members []*node, target uint64, next func()) {
			if members[0].loop.Tip().Number >= target {
				next()
				return
			}
			s.handle(members[s.rng.IntN(len(members))], ordering.UpdateKeys{})
			s.schedule(s.now.Add(1500*time.Millisecond), -1, nil, func() { drive(members, target, next) })
		}
		sideA := []*node{name(0), name(1), name(2), name(3)}
		sideB := []*node{name(4), name(5)}
		var heal func()
		heal = func() {
			if x.loop.Stats().Rejoin == 0 || x.loop.Tip().ID != name(4).loop.Tip().ID {
				s.schedule(s.now.Add(time.Second), -1, nil, heal)
				return
			}
			rejoined = x.loop.Tip().Number
			// m4 and m5, who hold m6's epochs and would tell it that
			// they lost, are away until the end of the run.
			for _, n := range sideB {
				n.offline = true
			}
			for _, n := range s.nodes {
				n.side = 0
			}
		}
		s.schedule(s.start.Add(time.Second), -1, nil, func() {
			x.offline = true
			leftAt = x.loop.Tip().Number
			drive(append(sideA, sideB...), leftAt+6, func() {
				fork = name(0).loop.Tip().Number
				for _, n := range append(sideB, x) {
					n.side = 1
				}
				bDone := false
				if removeOnA {
					s.handle(name(0), ordering.RemoveMember{Identity: "m6"})
				} else {
					drive(sideA, fork+1, func() {})
				}
				drive(sideB, fork+6, func() { bDone = true })
				var back func()
				back = func() {
					if !bDone || name(0).loop.Tip().Number < fork+1 {
						s.schedule(s.now.Add(time.Second), -1, nil, back)
						return
					}
					x.offline = false
					heal()
				}
				back()
			})
		})
	})
	return s, r, rejoined, leftAt, fork, backInTime
}
