package sim

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
	"github.com/parley-p2p/parley/ordering"
)

// TestAFloodOfProposalsGetsItsSenderNoMoreThanItsShare: m1 floods one
// epoch with 300 Add proposals (past its loop, as a hostile member can),
// and m2 asks to add m4 in the same epoch. The commit that adds m4 holds
// at most Config.MaxProposalsPerSender of m1's Adds, and the group goes
// on: a removal asked for after it is committed. With no bound (checked
// by the second case), all 300 go into one commit.
func TestAFloodOfProposalsGetsItsSenderNoMoreThanItsShare(t *testing.T) {
	for _, tc := range []struct {
		name       string
		max, flood int
	}{
		{"bounded", 0 /* the default, 64 */, 64},
		{"unbounded", 1000, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := quietGroup(t, 43, 4, func(c *Config) { c.Ordering.MaxProposalsPerSender = tc.max })
			m1, m2 := s.byName["m1"], s.byName["m2"]
			cs := suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
			for k := range 300 {
				signer, err := cs.GenerateSignatureKey(m1.cfg.Rand)
				if err != nil {
					t.Fatal(err)
				}
				b, err := group.NewKeyPackage(cs, signer, group.KeyPackageOptions{Credential: wire.NewBasicCredential(fmt.Appendf(nil, "flood-%d", k)), Rand: m1.cfg.Rand, Now: s.now})
				if err != nil {
					t.Fatal(err)
				}
				s.proposePastLoop(t, m1, &wire.Add{KeyPackage: *b.KeyPackage})
			}
			joiner := s.newNode("m4")
			joiner.bundle = s.bundleFor(joiner)
			s.handle(m2, ordering.AddMember{KeyPackage: keyPackageMessage(joiner.bundle)})
			m4 := ordering.Identity(&joiner.bundle.KeyPackage.LeafNode)
			has := func(n *node, id string) bool {
				for _, m := range n.loop.Tip().Members {
					if m == id {
						return true
					}
				}
				return false
			}
			waitSim(t, s, 2*time.Minute, "m4 in the group at m0", func() bool { return has(s.byName["m0"], m4) })
			flooded := 0
			for _, m := range s.byName["m0"].loop.Tip().Members {
				if strings.HasPrefix(m, "flood-") {
					flooded++
				}
			}
			if flooded != tc.flood {
				t.Fatalf("%d of m1's 300 Adds committed with m4, want %d", flooded, tc.flood)
			}
			if tc.max != 0 {
				return
			}
			m3 := s.byName["m3"].loop.Self()
			s.handle(m2, ordering.RemoveMember{Identity: m3})
			waitSim(t, s, 5*time.Minute, "m3 removed at m0, m1 and m2", func() bool {
				for _, n := range []*node{s.byName["m0"], m1, m2} {
					if has(n, m3) || !has(n, m4) {
						return false
					}
				}
				return true
			})
		})
	}
}

// TestManyInvitesAtOnceAreAllMadePastTheBound: a member asks to add 40
// clients at once, with MaxProposalsPerSender 8. Those of its proposals a
// commit leaves out are proposed again in the next epochs, so every
// client ends in the group, at every member, in at least five epochs.
func TestManyInvitesAtOnceAreAllMadePastTheBound(t *testing.T) {
	s := quietGroup(t, 44, 4, func(c *Config) { c.Ordering.MaxProposalsPerSender = 8 })
	before := s.byName["m0"].loop.Tip().Number
	var want []string
	asker := s.byName["m1"]
	for k := range 40 {
		n := s.newNode(fmt.Sprintf("j%d", k))
		n.bundle = s.bundleFor(n)
		s.handle(asker, ordering.AddMember{KeyPackage: keyPackageMessage(n.bundle)})
		want = append(want, ordering.Identity(&n.bundle.KeyPackage.LeafNode))
	}
	waitSim(t, s, 10*time.Minute, "every client in the group at every member", func() bool {
		for _, name := range []string{"m0", "m1", "m2", "m3"} {
			if len(s.byName[name].loop.Tip().Members) != 44 {
				return false
			}
		}
		return true
	})
	members := map[string]bool{}
	for _, m := range s.byName["m2"].loop.Tip().Members {
		members[m] = true
	}
	for _, id := range want {
		if !members[id] {
			t.Fatalf("%s not in the group", id)
		}
	}
	// No commit took more than 8 of the asker's proposals (its own
	// commits take its changes by value, unbounded, so this holds only
	// while another member commits them: it does in this seed).
	epochs := s.byName["m0"].loop.Tip().Number - before
	if epochs < 40/8 {
		t.Fatalf("40 adds in %d epochs, want at least %d: a commit took more than 8 proposals of one member", epochs, 40/8)
	}
	t.Logf("40 adds in %d epochs", epochs)
}
