package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestInviteWithApprovalWaitsForTheInviter: a join with a code made with
// approval is not added until the inviter's user approves it: the
// inviter sees a join request (with the joiner's name and fingerprint,
// as an event too), and the joiner stays pending; approved, the joiner
// is in. A denied request adds nobody, and its code is spent.
func TestInviteWithApprovalWaitsForTheInviter(t *testing.T) {
	ctx := context.Background()
	alice, carol, dave := testNode(t, "alice"), testNode(t, "carol"), testNode(t, "dave")
	if _, err := alice.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	events, err := alice.Subscribe(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	code, err := alice.InviteCode(ctx, "friends", api.WithApproval())
	if err != nil {
		t.Fatal(err)
	}
	if g, err := carol.Join(ctx, code); err != nil {
		t.Fatal(err)
	} else if !g.Pending || g.Approval != api.ApproveByInviter {
		t.Errorf("carol's join: pending %v, approval %q; want pending, %q", g.Pending, g.Approval, api.ApproveByInviter)
	}
	var req api.JoinRequest
	eventually(t, 10*time.Second, "a join request at alice", func() bool {
		rs, err := alice.JoinRequests(ctx)
		if err != nil || len(rs) != 1 {
			return false
		}
		req = rs[0]
		return true
	})
	carolID, _ := carol.Identity(ctx)
	if req.Name != "carol" || req.Fingerprint != carolID.Fingerprint || req.PeerID != carolID.PeerID || req.GroupName != "friends" {
		t.Errorf("join request %+v; want carol's name, fingerprint and peer ID, in friends", req)
	}
	for ev := range events {
		if ev.Type == api.EventJoinRequest {
			if ev.JoinRequest == nil || ev.JoinRequest.ID != req.ID {
				t.Errorf("join_request event %+v, want request %s", ev.JoinRequest, req.ID)
			}
			break
		}
	}
	// Nothing happens without the user: a while later carol is still out.
	<-time.After(time.Second)
	if g := groupOf(t, alice, "friends"); g.Members != 1 {
		t.Fatalf("friends has %d members before the approval, want 1", g.Members)
	}
	if g := groupOf(t, carol, "friends"); !g.Pending || g.Approval != api.ApproveByInviter {
		t.Fatalf("carol's friends before the approval: %+v, want pending, the inviter's approval", g)
	}
	if err := alice.Approve(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "carol in friends", func() bool { return groupOf(t, carol, "friends").Members == 2 })
	if g := groupOf(t, carol, "friends"); g.Pending || g.Approval != "" {
		t.Errorf("carol's friends once in: %+v, want neither pending nor waiting for approval", g)
	}
	if err := alice.Approve(ctx, req.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("approving the same request again: %v, want not found", err)
	}

	// Denied: nobody added, the code spent.
	code, err = alice.InviteCode(ctx, "friends", api.WithApproval())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "dave's join request", func() bool {
		rs, _ := alice.JoinRequests(ctx)
		if len(rs) == 1 {
			req = rs[0]
		}
		return len(rs) == 1
	})
	if err := alice.Deny(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	if rs, _ := alice.JoinRequests(ctx); len(rs) != 0 {
		t.Errorf("requests after the denial: %v", rs)
	}
	if _, err := dave.Join(ctx, code); !errors.Is(err, api.ErrBadCode) {
		t.Errorf("joining again with the denied code: %v, want bad code", err)
	}
	<-time.After(time.Second)
	if g := groupOf(t, alice, "friends"); g.Members != 2 {
		t.Errorf("friends has %d members after the denial, want 2", g.Members)
	}
}
