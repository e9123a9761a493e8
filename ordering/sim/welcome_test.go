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

// TestAJoinerGetsItsJoinEpochsFirstMessagesInItsFirstAnswer: the member
// that added m3 sends a text as soon as it is on the new epoch, before m3
// has its Welcome, so gossip never brings it to m3. Members answer a
// request without what gossip brought them within GossipGrace (it is on
// its way to the requester too) and m3 waited that long to ask again (in
// the node, a second from invite to the first text at 100 and at 1,000
// members). A member asked by one it had not heard before the text went
// out sends such a text from the epoch that added the requester: m3 has
// it a head and a round trip after it joined.
func TestAJoinerGetsItsJoinEpochsFirstMessagesInItsFirstAnswer(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		const grace = time.Second
		s := quietGroup(t, seed, 3, func(c *Config) { c.Ordering.GossipGrace = grace })
		m0 := s.byName["m0"]
		joiner := s.newNode("m3")
		joiner.bundle = s.bundleFor(joiner)
		s.handle(m0, ordering.AddMember{KeyPackage: keyPackageMessage(joiner.bundle)})
		waitSimBy(t, s, time.Minute, time.Millisecond, "m0 on the epoch that adds m3", func() bool { return len(m0.loop.Tip().Members) == 4 })
		s.send(m0)
		var text ordering.MessageID
		for id, sm := range s.sent {
			if sm.from == "m0" {
				text = id
			}
		}
		if text == (ordering.MessageID{}) {
			t.Fatalf("seed %d: m0's text was not sent", seed)
		}
		waitSimBy(t, s, time.Minute, time.Millisecond, "m3 joined", func() bool { return joiner.loop != nil })
		joined := s.now
		// m3 subscribes to the group's topic, and the others' transports
		// say so (as a node's pubsub does): their next heads tell m3 what
		// the epoch holds.
		for _, n := range []*node{m0, s.byName["m1"], s.byName["m2"]} {
			s.handle(n, ordering.PeerJoined{})
		}
		waitSimBy(t, s, time.Minute, time.Millisecond, "m3 has m0's text", func() bool { return joiner.delivered[text] > 0 })
		if took := s.now.Sub(joined); took >= grace/2 {
			t.Errorf("seed %d: m3 got m0's first text on its join epoch %v after it joined, want well under GossipGrace (%v)", seed, took, grace)
		} else {
			t.Logf("seed %d: m3 got m0's text %v after it joined", seed, took)
		}
	}
}
