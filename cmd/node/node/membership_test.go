package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

func TestInvitingAMemberAgainIsExists(t *testing.T) {
	ctx := context.Background()
	alice, _ := pairIn(t, "pair")
	err := alice.Invite(ctx, "pair", "bob")
	if !errors.Is(err, api.ErrExists) {
		t.Fatalf("inviting bob again: %v, want ErrExists", err)
	}
	if got := api.ErrorCode(err); got != "exists" {
		t.Errorf("code %q, want exists", got)
	}
	if got := groupOf(t, alice, "pair"); got.Members != 2 || got.Epoch != 1 {
		t.Errorf("after the refused invite the group is %+v, want 2 members at epoch 1", got)
	}
}

// An invite sent again before the first one's commit is made is refused
// as exists: the second Add would be invalid in the epoch that adds the
// member (§12.2), and a cached invalid Add once stopped a group of real
// daemons from committing anything more (chaos seed 7). The group adds
// the member once and goes on.
func TestInvitingAgainWhileTheFirstInviteIsOnItsWayIsExists(t *testing.T) {
	ctx := context.Background()
	alice, _ := pairIn(t, "pair")
	carol := testNode(t, "carol")
	befriend(t, alice, carol)
	if err := alice.Invite(ctx, "pair", "carol"); err != nil {
		t.Fatal(err)
	}
	err := alice.Invite(ctx, "pair", "carol")
	if !errors.Is(err, api.ErrExists) {
		t.Fatalf("inviting carol again at once: %v, want ErrExists", err)
	}
	eventually(t, 20*time.Second, "carol in", func() bool { return groupOf(t, carol, "pair").Members == 3 })
	if got := groupOf(t, alice, "pair"); got.Epoch != 2 {
		t.Errorf("carol added at epoch %d, want 2 (one commit)", got.Epoch)
	}
	if err := alice.Remove(ctx, "pair", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob removed at carol", func() bool {
		g := groupOf(t, carol, "pair")
		return g.Members == 2 && g.Epoch == 3
	})
}
