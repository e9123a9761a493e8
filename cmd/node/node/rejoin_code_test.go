package node

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestMemberThatForgotTheGroupIsToldWhyItCannotJoinAgain: a member whose
// node forgot the group (group forget --force) and joins with an invite
// code is refused with the reason, and the code is not spent: once a
// member removed it, the same code lets it in. Before, the inviter took
// the code and answered ok, and the joiner waited, pending, forever.
func TestMemberThatForgotTheGroupIsToldWhyItCannotJoinAgain(t *testing.T) {
	ctx := context.Background()
	alice, bob, bobDir := pairInDir(t, "club")
	if err := bob.ForgetGroup(ctx, "club", true); err != nil {
		t.Fatal(err)
	}
	code, err := alice.InviteCode(ctx, "club")
	if err != nil {
		t.Fatal(err)
	}
	_, err = bob.Join(ctx, code)
	if !errors.Is(err, api.ErrBadCode) || !strings.Contains(err.Error(), "member of this group already") {
		t.Fatalf("join by a member that forgot the group: %v, want ErrBadCode saying it is a member already", err)
	}
	// Nothing of the refused join stays, not even after a restart.
	bobAddrs := listenAddrs(bob)
	bob.Close()
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	groups, err := bob.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Name == "club" {
			t.Errorf("after the refused join bob lists %+v, want no club", g)
		}
	}
	if err := alice.Remove(ctx, "club", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob removed", func() bool { return groupOf(t, alice, "club").Members == 1 })
	if _, err := bob.Join(ctx, code); err != nil {
		t.Fatalf("join with the same code after the removal: %v", err)
	}
	eventually(t, 30*time.Second, "bob in the club again", func() bool {
		g := groupOf(t, bob, "club")
		return !g.Pending && g.Members == 2
	})
	if _, err := alice.Send(ctx, "club", "welcome back"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob reads alice", func() bool { return len(texts(t, bob, "club")) == 1 })
}
