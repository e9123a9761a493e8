package api_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// TestEveryMethodRoundTrips drives every Backend method through a Client
// and checks that it returns what the Backend itself does.
func TestEveryMethodRoundTrips(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			b, c := serveFake(t, tr)
			ctx := context.Background()
			same := func(method string, got, want any) {
				t.Helper()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s:\ngot  %+v\nwant %+v", method, got, want)
				}
			}

			id, err := c.Identity(ctx)
			wantID, _ := b.Identity(ctx)
			if err != nil {
				t.Fatal(err)
			}
			same("Identity", id, wantID)

			code, err := c.ContactCode(ctx)
			if err != nil || code != apitest.ContactPrefix+"alice" {
				t.Errorf("ContactCode = %q, %v", code, err)
			}
			bob, err := c.AddContact(ctx, apitest.ContactPrefix+"bob", "")
			if err != nil || bob.Name != "bob" {
				t.Errorf("AddContact = %+v, %v", bob, err)
			}
			if _, err := c.AddContact(ctx, apitest.ContactPrefix+"carol", "caz"); err != nil {
				t.Fatal(err)
			}
			contacts, err := c.Contacts(ctx)
			wantContacts, _ := b.Contacts(ctx)
			if err != nil || len(contacts) != 2 {
				t.Fatalf("Contacts = %+v, %v", contacts, err)
			}
			same("Contacts", contacts, wantContacts)

			g, err := c.CreateGroup(ctx, "friends")
			if err != nil || g.Name != "friends" || len(g.ID) != 32 {
				t.Fatalf("CreateGroup = %+v, %v", g, err)
			}
			groups, err := c.Groups(ctx)
			wantGroups, _ := b.Groups(ctx)
			if err != nil {
				t.Fatal(err)
			}
			same("Groups", groups, wantGroups)

			if err := c.Invite(ctx, "friends", "bob"); err != nil {
				t.Fatalf("Invite: %v", err)
			}
			if err := c.Invite(ctx, g.ID, "caz"); err != nil {
				t.Fatalf("Invite by id: %v", err)
			}
			members, err := c.Members(ctx, "friends")
			wantMembers, _ := b.Members(ctx, "friends")
			if err != nil || len(members) != 3 {
				t.Fatalf("Members = %+v, %v", members, err)
			}
			same("Members", members, wantMembers)
			if err := c.Remove(ctx, "friends", "caz"); err != nil {
				t.Fatalf("Remove: %v", err)
			}

			invite, err := c.InviteCode(ctx, "friends")
			if err != nil || invite != apitest.InvitePrefix+"friends" {
				t.Errorf("InviteCode = %q, %v", invite, err)
			}
			joined, err := c.Join(ctx, apitest.InvitePrefix+"book club")
			if err != nil || !joined.Pending || joined.Name != "book club" {
				t.Errorf("Join = %+v, %v", joined, err)
			}

			msgID, err := c.Send(ctx, "friends", "hello, world ✓")
			if err != nil || msgID == "" {
				t.Fatalf("Send = %q, %v", msgID, err)
			}
			path := filepath.Join(t.TempDir(), "notes.txt")
			if err := os.WriteFile(path, []byte("some notes"), 0o600); err != nil {
				t.Fatal(err)
			}
			fileID, err := c.SendFile(ctx, "friends", path)
			if err != nil || fileID == "" || fileID == msgID {
				t.Fatalf("SendFile = %q, %v", fileID, err)
			}
			msgs, err := c.Read(ctx, "friends", 0, 0)
			wantMsgs, _ := b.Read(ctx, "friends", 0, 0)
			if err != nil || len(msgs) != 2 {
				t.Fatalf("Read = %+v, %v", msgs, err)
			}
			same("Read", msgs, wantMsgs)
			if msgs[0].ID != msgID || msgs[0].Text != "hello, world ✓" || msgs[1].File == nil || msgs[1].File.Name != "notes.txt" {
				t.Errorf("Read returned %+v", msgs)
			}
			if page, err := c.Read(ctx, "friends", 1, 1); err != nil || len(page) != 1 || page[0].Seq != 2 {
				t.Errorf("Read(after 1, limit 1) = %+v, %v", page, err)
			}
			if empty, err := c.Read(ctx, "book club", 0, 0); err != nil || empty == nil || len(empty) != 0 {
				t.Errorf("Read of an empty history = %#v, %v; want an empty slice", empty, err)
			}

			st, err := c.Status(ctx)
			wantSt, _ := b.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			same("Status", st, wantSt)

			if err := c.Leave(ctx, "friends"); err != nil {
				t.Fatalf("Leave: %v", err)
			}
			if _, err := c.Send(ctx, "friends", "anyone?"); !errors.Is(err, api.ErrNotMember) {
				t.Errorf("Send after Leave: %v, want ErrNotMember", err)
			}
			if err := c.ForgetGroup(ctx, "friends", false); err != nil {
				t.Fatalf("ForgetGroup: %v", err)
			}
			if _, err := c.Read(ctx, "friends", 0, 0); !errors.Is(err, api.ErrNotFound) {
				t.Errorf("Read after ForgetGroup: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestBackendErrorsCrossAsSentinels checks the errors the fake returns
// for bad input arrive as the same sentinels.
func TestBackendErrorsCrossAsSentinels(t *testing.T) {
	_, c := serveFake(t, transports[0])
	ctx := context.Background()
	if _, err := c.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"unknown group", func() error { _, err := c.Members(ctx, "nope"); return err }, api.ErrNotFound},
		{"unknown contact", func() error { return c.Invite(ctx, "friends", "nobody") }, api.ErrNotFound},
		{"bad contact code", func() error { _, err := c.AddContact(ctx, "garbage", ""); return err }, api.ErrBadCode},
		{"bad invite code", func() error { _, err := c.Join(ctx, "garbage"); return err }, api.ErrBadCode},
		{"group exists", func() error { _, err := c.CreateGroup(ctx, "friends"); return err }, api.ErrExists},
		{"remove self", func() error { return c.Remove(ctx, "friends", "alice") }, api.ErrInvalid},
		{"relative file path", func() error { _, err := c.SendFile(ctx, "friends", "notes.txt"); return err }, api.ErrInvalid},
		{"negative limit", func() error { _, err := c.Read(ctx, "friends", 0, -1); return err }, api.ErrInvalid},
		{"empty text", func() error { _, err := c.Send(ctx, "friends", ""); return err }, api.ErrInvalid},
		{"missing group", func() error { _, err := c.Members(ctx, ""); return err }, api.ErrInvalid},
		{"subscribe to unknown group", func() error { _, err := c.Subscribe(ctx, "nope"); return err }, api.ErrNotFound},
		{"forget a group you are in", func() error { return c.ForgetGroup(ctx, "friends", false) }, api.ErrInvalid},
		{"forget with no group", func() error { return c.ForgetGroup(ctx, "", true) }, api.ErrInvalid},
		{"forget an unknown group", func() error { return c.ForgetGroup(ctx, "nope", true) }, api.ErrNotFound},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := c.Join(ctx, apitest.InvitePrefix+"friends"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Members(ctx, "friends"); !errors.Is(err, api.ErrAmbiguous) {
		t.Errorf("two groups named friends: got %v, want ErrAmbiguous", err)
	}
}
