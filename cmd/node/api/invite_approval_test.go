package api_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// TestInviteCodeSaysWhoApproves: invite_code's result names who approves
// the joins with the code (approve_by: "inviter" for approve, "members"
// for approve_by members, nothing when nobody does), the backend gets the
// matching options, a Client's WithApprovalByMembers reaches it, an
// unknown approve_by is refused, and join_requests says who invited and
// who decides.
func TestInviteCodeSaysWhoApproves(t *testing.T) {
	b := apitest.New()
	ctx := context.Background()
	if _, err := b.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	_, path := serveUnix(t, b)
	c := dialRaw(t, "unix", path)
	tests := []struct {
		params    string
		approveBy string
		want      api.InviteSettings
	}{
		{`{"group":"friends"}`, "", api.InviteSettings{}},
		{`{"group":"friends","approve":true}`, api.ApproveByInviter, api.InviteSettings{Approve: true}},
		{`{"group":"friends","approve_by":"inviter"}`, api.ApproveByInviter, api.InviteSettings{Approve: true}},
		{`{"group":"friends","approve_by":"members"}`, api.ApproveByMembers, api.InviteSettings{Approve: true, ByMembers: true}},
		{`{"group":"friends","approve":true,"approve_by":"members"}`, api.ApproveByMembers, api.InviteSettings{Approve: true, ByMembers: true}},
	}
	for i, tc := range tests {
		c.send(`{"id":1,"method":"invite_code","params":` + tc.params + `}`)
		r := c.recvResponse()
		var res struct {
			Code      string  `json:"code"`
			ApproveBy *string `json:"approve_by"`
		}
		if r.Error != nil || json.Unmarshal(r.Result, &res) != nil || res.Code != apitest.InvitePrefix+"friends" {
			t.Fatalf("%s: %s, %+v", tc.params, r.Result, r.Error)
		}
		switch {
		case tc.approveBy == "" && res.ApproveBy != nil:
			t.Errorf("%s: approve_by %q, want none", tc.params, *res.ApproveBy)
		case tc.approveBy != "" && (res.ApproveBy == nil || *res.ApproveBy != tc.approveBy):
			t.Errorf("%s: result %s, want approve_by %q", tc.params, r.Result, tc.approveBy)
		}
		if got := b.LastInviteSettings(); got != tc.want {
			t.Errorf("%d: %s: the backend got %+v, want %+v", i, tc.params, got, tc.want)
		}
	}
	c.send(`{"id":2,"method":"invite_code","params":{"group":"friends","approve_by":"everyone"}}`)
	if r := c.recvResponse(); r.Error == nil || r.Error.Code != "invalid" {
		t.Errorf("approve_by everyone: %s, %+v; want an invalid error", r.Result, r.Error)
	}

	client, err := api.Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.InviteCode(ctx, "friends", api.WithApprovalByMembers()); err != nil {
		t.Fatal(err)
	}
	if got, want := b.LastInviteSettings(), (api.InviteSettings{Approve: true, ByMembers: true}); got != want {
		t.Errorf("Client.InviteCode WithApprovalByMembers: the backend got %+v, want %+v", got, want)
	}
	if _, err := client.InviteCode(ctx, "friends", api.WithApproval()); err != nil {
		t.Fatal(err)
	}
	if got, want := b.LastInviteSettings(), (api.InviteSettings{Approve: true}); got != want {
		t.Errorf("Client.InviteCode WithApproval: the backend got %+v, want %+v", got, want)
	}

	if _, err := b.RequestSharedJoin("friends", "dave", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RequestJoin("friends", "erin"); err != nil {
		t.Fatal(err)
	}
	rs, err := client.JoinRequests(ctx)
	if err != nil || len(rs) != 2 {
		t.Fatalf("JoinRequests = %+v, %v", rs, err)
	}
	if rs[0].InvitedBy != "bob" || rs[0].ApproveBy != api.ApproveByMembers || rs[1].InvitedBy != "alice" || rs[1].ApproveBy != api.ApproveByInviter {
		t.Errorf("JoinRequests = %+v; want dave invited by bob, any member deciding, and erin by alice, alice deciding", rs)
	}
}
