package group

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/wire"
)

// A member whose Update was committed keeps its new leaf key after the
// epoch that cached the Update is retired or destroyed: the next epoch
// must decrypt UpdatePaths sent to that leaf.
func TestCommittedOwnUpdateSurvivesRetiringThePreviousEpoch(t *testing.T) {
	for _, end := range []struct {
		name string
		drop func(*State)
	}{
		{"retire", func(s *State) { s.Retire() }},
		{"history", func(s *State) { (&History{MaxEpochs: 1}).Add(s, time.Now()) }},
		{"destroy", func(s *State) { s.Destroy() }},
	} {
		t.Run(end.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			b := f.members[1]
			msg, _, err := b.Propose(&wire.Update{}, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range []int{0, 2, 3} {
				if _, err := f.members[i].ProcessBytes(msg); err != nil {
					t.Fatal(err)
				}
			}
			commit := f.commitAdopt(0, CommitOptions{IncludePending: true})
			for _, i := range []int{1, 2, 3} {
				p, err := f.members[i].ProcessBytes(commit)
				if err != nil {
					t.Fatal(err)
				}
				f.members[i] = p.Commit.State
			}
			end.drop(b)

			// Alice's next path is encrypted to bob's leaf, her sibling:
			// bob needs his new leaf key to read it.
			commit = f.commitAdopt(0, CommitOptions{ForcePath: true})
			got, err := f.members[1].ProcessBytes(commit)
			if err != nil {
				t.Fatalf("bob processing a path after his update: %v", err)
			}
			want, err := f.members[3].ProcessBytes(commit)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Commit.State.EpochAuthenticator(), want.Commit.State.EpochAuthenticator()) {
				t.Error("bob and dave disagree on the epoch after the path")
			}
		})
	}
}

// TestCommitRefusesALeafItsSignerDoesNotOwn: a committer's new leaf is
// signed with the member's signer; a template naming another signature
// key would give a leaf no one can verify, and the commit is refused
// before it is made.
func TestCommitRefusesALeafItsSignerDoesNotOwn(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	a := f.members[0]
	leaf := *a.tree.Leaf(0)
	leaf.SignatureKey = f.members[1].tree.Leaf(1).SignatureKey
	before := snapshot(t, a)
	if _, err := a.Commit(CommitOptions{ForcePath: true, LeafNode: &leaf}); !errors.Is(err, ErrInvalidCommit) {
		t.Fatalf("Commit with another member's signature key: %v, want %v", err, ErrInvalidCommit)
	}
	if !bytes.Equal(snapshot(t, a), before) {
		t.Fatal("the refused commit changed the state")
	}
	if _, err := a.Commit(CommitOptions{ForcePath: true}); err != nil {
		t.Fatalf("Commit with the member's own leaf: %v", err)
	}
}
