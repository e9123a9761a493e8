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
	alice, bob := testNode(t, "alice"), testNode(t, "bob")
	befriend(t, alice, bob)
	if _, err := alice.CreateGroup(ctx, "pair"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, "pair", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob in", func() bool { return groupOf(t, bob, "pair").Members == 2 })
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
