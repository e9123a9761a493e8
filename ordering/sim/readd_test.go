package sim

import (
	"errors"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
)

// TestASecondAddOfOneClientNeitherCommitsNorStopsTheGroup: an Add of a
// client that is in the group already is an invalid proposal (§12.2).
//   - A member asked twice to add one client before the first add is done
//     refuses the second (ErrAlreadyMember) instead of proposing it in the
//     epoch that adds the client.
//   - A cached Add of a member (from another implementation, or a member
//     that asked before this check) is left out of the commits of its
//     epoch, and a removal asked for after every member's turn to commit
//     has passed is still committed.
//
// The chaos test on real daemons (seed 7, on a loaded machine) found the
// second: an invite sent twice put an Add of a member in the cache, every
// member's commit failed on it and was given up for the epoch, and the
// group made no epoch after it for the rest of the run.
func TestASecondAddOfOneClientNeitherCommitsNorStopsTheGroup(t *testing.T) {
	s := quietGroup(t, 41, 4)
	m0, m1, m2 := s.byName["m0"], s.byName["m1"], s.byName["m2"]
	joiner := s.newNode("m4")
	joiner.bundle = s.bundleFor(joiner)
	again := func() []byte {
		// Another KeyPackage of the joiner, with its signature key.
		b, err := group.NewKeyPackage(suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, joiner.bundle.Signer,
			group.KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(joiner.name)), Rand: joiner.cfg.Rand, Now: s.now})
		if err != nil {
			t.Fatal(err)
		}
		return keyPackageMessage(b)
	}
	rejected := func(n *node, ev ordering.Event) error {
		out := n.loop.Handle(s.now, ev)
		s.apply(n, out)
		for _, no := range out.Notices {
			if no.Kind == ordering.NoticeRejected {
				return no.Err
			}
		}
		return nil
	}
	before := m0.loop.Tip().Number
	if err := rejected(m0, ordering.AddMember{KeyPackage: keyPackageMessage(joiner.bundle)}); err != nil {
		t.Fatalf("first add: %v", err)
	}
	if err := rejected(m0, ordering.AddMember{KeyPackage: again()}); !errors.Is(err, ordering.ErrAlreadyMember) {
		t.Fatalf("second add while the first is on its way: err = %v, want ErrAlreadyMember", err)
	}
	m4 := ordering.Identity(&joiner.bundle.KeyPackage.LeafNode)
	if got := m0.loop.Adding(); len(got) != 1 || got[0] != m4 {
		t.Fatalf("m0 adding %q, want m4 alone", got)
	}
	if got := m0.loop.Waiting(); len(got) != 1 || got[0].Kind != "add" || got[0].Identity != m4 || !got[0].Asked.Equal(s.now) {
		t.Fatalf("m0 waiting for %+v, want the add of m4 asked at %v", got, s.now)
	}
	waitSim(t, s, time.Minute, "every member on an epoch with m4", func() bool {
		for _, n := range []*node{m0, m1, m2, s.byName["m3"]} {
			if len(n.loop.Tip().Members) != 5 {
				return false
			}
		}
		return joiner.loop != nil
	})
	if n := m0.loop.Tip().Number; n != before+1 {
		t.Fatalf("m4 added in %d epochs, want 1", n-before)
	}
	if got := m0.loop.Adding(); len(got) != 0 {
		t.Errorf("m0 still adding %q once m4 is in", got)
	}
	if got := m0.loop.Waiting(); len(got) != 0 {
		t.Errorf("m0 still waiting for %+v once m4 is in", got)
	}
	if err := rejected(m1, ordering.AddMember{KeyPackage: again()}); !errors.Is(err, ordering.ErrAlreadyMember) {
		t.Fatalf("add of a member: err = %v, want ErrAlreadyMember", err)
	}

	// m1 proposes an Add of m4 all the same, past its loop.
	tip := m1.loop.Tip()
	var kp wire.MLSMessage
	if err := codec.Unmarshal(again(), &kp); err != nil {
		t.Fatal(err)
	}
	s.proposePastLoop(t, m1, &wire.Add{KeyPackage: *kp.KeyPackage})
	// Past every member's turn to commit in the epoch.
	s.advance(20 * time.Second)
	if n := len(m0.loop.Tip().Members); n != 5 {
		t.Fatalf("%d members after the invalid Add, want 5", n)
	}
	m3 := s.byName["m3"]
	if err := rejected(m2, ordering.RemoveMember{Identity: m3.loop.Self()}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if got := m2.loop.Waiting(); len(got) != 1 || got[0].Kind != "remove" || got[0].Identity != m3.loop.Self() {
		t.Fatalf("m2 waiting for %+v, want the removal of m3", got)
	}
	waitSim(t, s, time.Minute, "m3 removed at m0, m1, m2 and m4", func() bool {
		for _, n := range []*node{m0, m1, m2, joiner} {
			if len(n.loop.Tip().Members) != 4 || n.loop.Tip().Number <= tip.Number {
				return false
			}
		}
		return true
	})
	for _, n := range []*node{m0, m1, m2, joiner} {
		if got := n.loop.Tip().ID; got != m0.loop.Tip().ID {
			t.Errorf("%s on another epoch than m0", n.name)
		}
	}
	if got := m2.loop.Waiting(); len(got) != 0 {
		t.Errorf("m2 still waiting for %+v once m3 is out", got)
	}
	s.advance(10 * time.Second)
	if r := s.check(); len(r.Violations) > 0 {
		t.Errorf("properties: %v", r.Violations)
	}
}

// TestWaitingNamesOtherMembersProposals: a Remove that m1 proposed (past
// its loop) is among every other member's Waiting changes, with m1 as its
// proposer, from its arrival until the epoch that removes m3; m1's own
// Waiting does not list it (its own changes are its intents).
func TestWaitingNamesOtherMembersProposals(t *testing.T) {
	s := quietGroup(t, 42, 4)
	m1, m2, m3 := s.byName["m1"], s.byName["m2"], s.byName["m3"]
	target := m3.loop.Self()
	leaf, ok := m1.loop.State().Tree().FindSignatureKey(m3.loop.State().Signer().PublicKey())
	if !ok {
		t.Fatal("m3 not in m1's tree")
	}
	s.proposePastLoop(t, m1, &wire.Remove{Removed: uint32(leaf)})
	waitSim(t, s, time.Second, "m2 holding m1's proposal", func() bool { return m2.loop.State().PendingProposals() > 0 })
	want := ordering.WaitingChange{Kind: "remove", Identity: target, By: m1.loop.Self()}
	if got := m2.loop.Waiting(); len(got) != 1 || got[0] != want {
		t.Fatalf("m2 waiting for %+v, want %+v", got, want)
	}
	if got := m1.loop.Waiting(); len(got) != 0 {
		t.Fatalf("m1 waiting for %+v, want nothing: its own proposal is no intent", got)
	}
	waitSim(t, s, time.Minute, "m3 removed at m2", func() bool { return len(m2.loop.Tip().Members) == 3 })
	if got := m2.loop.Waiting(); len(got) != 0 {
		t.Fatalf("m2 still waiting for %+v once m3 is out", got)
	}
}

// proposePastLoop has n propose p in its canonical epoch with its MLS
// state, not through its loop (as a hostile member, or another
// implementation, can), and sends the proposal to every other member.
func (s *Sim) proposePastLoop(t testing.TB, n *node, p wire.Proposal) {
	t.Helper()
	tip := n.loop.Tip()
	msg, _, err := n.loop.State().Propose(p, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	env := (&ordering.Envelope{Kind: ordering.KindHandshake, Epoch: tip.ID, Payload: msg}).Encode()
	for _, to := range s.nodes {
		if to != n {
			s.deliverEnvelope(n, to, env)
		}
	}
}
