package node

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/ordering"
)

// memberID is the identity of a member named name with a fresh key.
func memberID(t *testing.T, name string) string {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return MemberID(p, name)
}

func TestRollbackNoticeSaysWhoseCommitWon(t *testing.T) {
	self, carol, bob := memberID(t, "alice"), memberID(t, "carol"), memberID(t, "bob")
	for _, c := range []struct {
		no   ordering.Notice
		want string
	}{
		{ordering.Notice{Epoch: 2, Depth: 1, Winner: carol, Loser: bob}, "commits on epoch 2: carol's won, bob's was rolled back (1 epoch)"},
		{ordering.Notice{Epoch: 4, Depth: 2, Winner: carol, Loser: self}, "commits on epoch 4: carol's won, yours was rolled back (2 epochs)"},
		{ordering.Notice{Epoch: 4, Depth: 1, Winner: carol}, "switched to carol's commit on epoch 4 (1 epoch rolled back)"},
		{ordering.Notice{Epoch: 4, Depth: 1, Winner: carol, Loser: carol}, "switched to carol's commit on epoch 4 (1 epoch rolled back)"},
		{ordering.Notice{Epoch: 7, Depth: 3}, "switched branch at epoch 7 (3 epochs rolled back)"},
	} {
		if got := rollbackText(c.no, self); got != c.want {
			t.Errorf("rollbackText(%+v) = %q, want %q", c.no, got, c.want)
		}
	}
}
