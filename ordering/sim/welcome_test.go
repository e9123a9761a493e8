package sim

import (
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestAddedMemberJoinsThoughItsCommitterCrashedBeforeFinality: the
// Welcomes of a commit go out once its epoch is final, so the committer
// holds them until then. m0 adds m5 while the others are down (the epoch
// cannot be final), crashes, and restarts; the others come back and vote
// the epoch final; m5 must get its Welcome and join. (The Welcomes were
// kept in memory only: a committer's crash lost them and the member it
// added never joined. Seen with real daemons in
// TestMessageBecomesFinalAfterTheReceiverRestarts.)
func TestAddedMemberJoinsThoughItsCommitterCrashedBeforeFinality(t *testing.T) {
	s := quietGroup(t, 29, 5)
	m0 := s.byName["m0"]
	others := []*node{s.byName["m1"], s.byName["m2"], s.byName["m3"], s.byName["m4"]}
	for _, n := range others {
		n.offline = true
	}
	joiner := s.newNode("m5")
	joiner.bundle = s.bundleFor(joiner)
	s.handle(m0, ordering.AddMember{KeyPackage: keyPackageMessage(joiner.bundle)})
	waitSim(t, s, time.Minute, "m0 on an epoch with m5", func() bool { return len(m0.loop.Tip().Members) == 6 })
	epoch := m0.loop.Tip().Number
	if m0.loop.FinalEpoch() >= epoch || joiner.loop != nil {
		t.Fatalf("the premise: epoch %d final at m0 (final %d) or m5 joined (%v) with four of six members down", epoch, m0.loop.FinalEpoch(), joiner.loop != nil)
	}
	m0.up, m0.loop = false, nil // crash: what it persisted stays
	s.advance(time.Second)
	s.restart(m0)
	for _, n := range others {
		n.offline = false
		s.handle(n, ordering.PeerJoined{})
	}
	waitSim(t, s, time.Minute, "m0 holds the epoch final", func() bool { return m0.loop.FinalEpoch() >= epoch })
	waitSim(t, s, 30*time.Second, "m5 joined", func() bool { return joiner.loop != nil && joiner.member })
}
