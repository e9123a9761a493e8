package node

import (
	"context"
	"errors"
	"testing"

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
