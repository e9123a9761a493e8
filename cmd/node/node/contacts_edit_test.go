package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestContactsAreRenamedAndRemoved: a contact renamed is invited and
// listed by its new name (not its old one), a name in use is refused,
// and a contact removed is gone from the list and from invite, while the
// group it is in keeps it; all of it after a restart too.
func TestContactsAreRenamedAndRemoved(t *testing.T) {
	ctx := context.Background()
	alice, dir := testNodeIn(t, "alice")
	bob, carol := testNode(t, "bob"), testNode(t, "carol")
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	if _, err := alice.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	names := func(n *Node) []string {
		cs, err := n.Contacts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}

	ct, err := alice.RenameContact(ctx, "bob", "robert")
	if err != nil || ct.Name != "robert" || ct.PeerID != bob.id.PeerID.String() {
		t.Fatalf("rename bob to robert: %+v, %v", ct, err)
	}
	if _, err := alice.RenameContact(ctx, "robert", "carol"); !errors.Is(err, api.ErrExists) {
		t.Errorf("rename robert to carol, a name in use: %v, want exists", err)
	}
	if _, err := alice.RenameContact(ctx, "robert", "bad\nname"); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("rename to a name with a newline: %v, want invalid", err)
	}
	if _, err := alice.RenameContact(ctx, "nobody", "x"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("rename of no contact: %v, want not found", err)
	}
	if err := alice.Invite(ctx, "friends", "bob"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("invite by the old name: %v, want not found", err)
	}
	if err := alice.Invite(ctx, "friends", "robert"); err != nil {
		t.Fatalf("invite by the new name: %v", err)
	}
	eventually(t, 20*time.Second, "bob in friends", func() bool { return groupOf(t, bob, "friends").Members == 2 })

	if err := alice.RemoveContact(ctx, "robert"); err != nil {
		t.Fatal(err)
	}
	if err := alice.RemoveContact(ctx, "robert"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("removing it again: %v, want not found", err)
	}
	if got := names(alice); !slices.Equal(got, []string{"carol"}) {
		t.Errorf("contacts after the removal: %v, want [carol]", got)
	}
	if err := alice.Invite(ctx, "friends", "robert"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("invite of a removed contact: %v, want not found", err)
	}
	ms, err := alice.Members(ctx, "friends")
	if err != nil || len(ms) != 2 {
		t.Errorf("members after the contact's removal: %v, %v; want bob still in", ms, err)
	}

	if _, err := alice.RenameContact(ctx, "carol", "caz"); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	alice = openTestNode(t, dir)
	if got := names(alice); !slices.Equal(got, []string{"caz"}) {
		t.Errorf("contacts after a restart: %v, want [caz]", got)
	}
}
