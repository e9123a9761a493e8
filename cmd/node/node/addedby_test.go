package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
)

// TestAddedByNamesTheProposerNotTheCommitter: in a group of alice and
// bob, the one who is not the epoch's preferred committer lets carol in,
// from its contacts or by approving her join with an invite code; its
// node proposes the Add and the other commits it (by reference). Both
// then list the inviter as ADDED BY, not the committer.
func TestAddedByNamesTheProposerNotTheCommitter(t *testing.T) {
	for _, c := range []struct {
		name   string
		invite func(t *testing.T, inviter, carol *Node)
	}{
		{"contact", func(t *testing.T, inviter, _ *Node) {
			if err := inviter.Invite(t.Context(), "g", "carol"); err != nil {
				t.Fatal(err)
			}
		}},
		{"code with approval", func(t *testing.T, inviter, carol *Node) {
			ctx := t.Context()
			code, err := inviter.InviteCode(ctx, "g", api.WithApproval())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := carol.Join(ctx, code); err != nil {
				t.Fatal(err)
			}
			var reqs []api.JoinRequest
			eventually(t, 10*time.Second, "carol's join request", func() bool {
				reqs, err = inviter.JoinRequests(ctx)
				return err == nil && len(reqs) == 1
			})
			if err := inviter.Approve(ctx, reqs[0].ID); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.Context()
			// The other members' backoff is long: only the preferred
			// committer commits within the test.
			slow := ordering.Config{CommitBackoff: 10 * time.Minute}
			alice, bob, carol := testNodeWith(t, "alice", slow), testNodeWith(t, "bob", slow), testNode(t, "carol")
			befriend(t, alice, bob)
			befriend(t, alice, carol)
			befriend(t, bob, carol)
			if _, err := alice.CreateGroup(ctx, "g"); err != nil {
				t.Fatal(err)
			}
			// Alone in the group, alice is its preferred committer: she
			// commits bob's add herself.
			if err := alice.Invite(ctx, "g", "bob"); err != nil {
				t.Fatal(err)
			}
			eventually(t, 20*time.Second, "bob in", func() bool {
				return groupOf(t, bob, "g").Members == 2 && groupOf(t, alice, "g").Epoch == groupOf(t, bob, "g").Epoch
			})

			inviter, committer := alice, bob
			if preferredCommitter(t, alice, "g") == alice.loopSelf(t, "g") {
				inviter, committer = bob, alice
			}
			c.invite(t, inviter, carol)
			for _, n := range []*Node{alice, bob} {
				eventually(t, 30*time.Second, n.id.Name+" sees carol in", func() bool { return groupOf(t, n, "g").Members == 3 })
			}
			// The premise: the epoch that added carol is the committer's.
			if got, want := tipCommitter(t, inviter, "g"), committer.loopSelf(t, "g"); got != want {
				t.Fatalf("carol's add committed by %q, want %q (the preferred committer): the test's premise does not hold", got, want)
			}
			for _, n := range []*Node{alice, bob} {
				members, err := n.Members(ctx, "g")
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(members, func(m api.Member) bool { return m.Name == "carol" })
				if i < 0 {
					t.Fatalf("%s: no carol in %+v", n.id.Name, members)
				}
				if got, want := members[i].AddedBy, inviter.id.Name; got != want {
					t.Errorf("%s lists carol as added by %q, want %q (who let her in; %s committed)", n.id.Name, got, want, committer.id.Name)
				}
			}
		})
	}
}

// testNodeWith is testNode with ordering settings of its own.
func testNodeWith(t testing.TB, name string, oc ordering.Config) *Node {
	t.Helper()
	dir := t.TempDir()
	if _, err := Init(dir, name, nil, nil); err != nil {
		t.Fatal(err)
	}
	n, err := Open(context.Background(), Config{
		Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Ordering: oc,
		TickInterval: 50 * time.Millisecond, UpdateInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// onLoop runs f on the group's loop goroutine, which owns the loop.
func onLoop(t testing.TB, n *Node, group string, f func(l *ordering.Loop)) {
	t.Helper()
	g, err := n.findGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.do(context.Background(), func() error { f(g.loop); return nil }); err != nil {
		t.Fatal(err)
	}
}

// loopSelf is the node's member identity in the group.
func (n *Node) loopSelf(t testing.TB, group string) string {
	var self string
	onLoop(t, n, group, func(l *ordering.Loop) { self = l.Self() })
	return self
}

func tipCommitter(t testing.TB, n *Node, group string) string {
	var c string
	onLoop(t, n, group, func(l *ordering.Loop) { c = l.Tip().Committer })
	return c
}

// preferredCommitter is the member that commits first on n's tip epoch:
// the one whose SHA-256(epoch id || identity) is lowest (ordering's
// committerRank 0). The test checks its answer through tipCommitter.
func preferredCommitter(t testing.TB, n *Node, group string) string {
	var best string
	var bestHash [32]byte
	onLoop(t, n, group, func(l *ordering.Loop) {
		tip := l.Tip()
		for _, m := range tip.Members {
			h := sha256.Sum256(append(append([]byte(nil), tip.ID[:]...), m...))
			if best == "" || bytes.Compare(h[:], bestHash[:]) < 0 {
				best, bestHash = m, h
			}
		}
	})
	return best
}
