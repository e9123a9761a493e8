package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
)

// trioIn makes alice, bob and carol, and a group named name that alice
// created and invited the other two to.
func trioIn(t testing.TB, name string) (alice, bob, carol *Node) {
	t.Helper()
	ctx := context.Background()
	alice, bob, carol = testNode(t, "alice"), testNode(t, "bob"), testNode(t, "carol")
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	if _, err := alice.CreateGroup(ctx, name); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol"} {
		if err := alice.Invite(ctx, name, who); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{alice, bob, carol} {
		eventually(t, 30*time.Second, "three members everywhere", func() bool { return groupOf(t, n, name).Members == 3 })
	}
	// Bob and carol find each other through alice (connectLoop): the
	// group goes on without her only once they have.
	eventually(t, 30*time.Second, "bob and carol connected", func() bool { return bob.p2p.Connected(carol.id.PeerID) })
	return alice, bob, carol
}

// shareJoinOf has joiner join group with a code that inviter made for
// any member's approval, and returns the request once every holder has
// it (the same request everywhere).
func shareJoinOf(t testing.TB, inviter, joiner *Node, group string, holders ...*Node) api.JoinRequest {
	t.Helper()
	ctx := context.Background()
	code, err := inviter.InviteCode(ctx, group, api.WithApprovalByMembers())
	if err != nil {
		t.Fatal(err)
	}
	if g, err := joiner.Join(ctx, code); err != nil {
		t.Fatal(err)
	} else if !g.Pending || g.Approval != api.ApproveByMembers {
		t.Errorf("%s's join: pending %v, approval %q; want pending, %q", joiner.id.Name, g.Pending, g.Approval, api.ApproveByMembers)
	}
	var req api.JoinRequest
	for _, h := range append([]*Node{inviter}, holders...) {
		eventually(t, 20*time.Second, "the join request at "+h.id.Name, func() bool {
			rs, err := h.JoinRequests(ctx)
			if err != nil || len(rs) != 1 {
				return false
			}
			if req.ID == "" {
				req = rs[0]
			}
			return rs[0].ID == req.ID
		})
	}
	return req
}

// pendingRequests are a node's join requests.
func pendingRequests(t testing.TB, n *Node) []api.JoinRequest {
	t.Helper()
	rs, err := n.JoinRequests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// sendRaw sends an application message of any content type from n.
func sendRaw(t testing.TB, n *Node, group string, ct uint16, body []byte) {
	t.Helper()
	g, err := n.findGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.do(context.Background(), func() error { _, err := g.send(ct, body, nil); return err }); err != nil {
		t.Fatal(err)
	}
}

// deliverAs has n's group take an application message from sender as
// the loop delivers one (authenticated and decrypted), through the write
// every delivery takes.
func deliverAs(t testing.TB, n *Node, group, sender string, ct uint16, body []byte) {
	t.Helper()
	g, err := n.findGroup(group)
	if err != nil {
		t.Fatal(err)
	}
	var id ordering.MessageID
	rand.Read(id[:])
	if err := g.do(context.Background(), func() error {
		tip := g.loop.Tip().Number
		d := ordering.Delivery{ID: id, Sender: sender, ContentType: ct, Body: body, Epoch: tip, SentAt: time.Now()}
		if !g.applyLater(&ordering.Output{Deliveries: []ordering.Delivery{d}}, nil, nil) {
			return errStopped
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// talks checks that each node's message reaches the others.
func talks(t testing.TB, group string, nodes ...*Node) {
	t.Helper()
	ctx := context.Background()
	for _, from := range nodes {
		text := "hello from " + from.id.Name
		if _, err := from.Send(ctx, group, text); err != nil {
			t.Fatalf("%s sends: %v", from.id.Name, err)
		}
		for _, to := range nodes {
			eventually(t, 30*time.Second, to.id.Name+" reads "+from.id.Name, func() bool {
				return slices.Contains(texts(t, to, group), from.id.Name+": "+text)
			})
		}
	}
}

// onlyTexts checks that n's history of group holds only text messages:
// the join messages are never shown.
func onlyTexts(t testing.TB, n *Node, group string) {
	t.Helper()
	msgs, err := n.Read(context.Background(), group, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.Text == "" {
			t.Errorf("%s's history of %s shows a message that is no text: %+v", n.id.Name, group, m)
		}
	}
}

// TestAnyMemberApprovesAJoinWhileTheInviterIsDown: alice makes a code
// that any member approves; dave joins with it, and bob and carol hold
// his request too (who invited him, his name and fingerprint). Alice
// stops; bob approves, and dave is let in by bob and carol alone, reads
// and sends; the request is gone everywhere and no join message shows.
func TestAnyMemberApprovesAJoinWhileTheInviterIsDown(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := trioIn(t, "friends")
	dave := testNode(t, "dave")
	req := shareJoinOf(t, alice, dave, "friends", bob, carol)
	daveID, _ := dave.Identity(ctx)
	for _, n := range []*Node{alice, bob, carol} {
		rs := pendingRequests(t, n)
		r := rs[0]
		if r.Name != "dave" || r.PeerID != daveID.PeerID || r.Fingerprint != daveID.Fingerprint || r.GroupName != "friends" ||
			r.InvitedBy != "alice" || r.ApproveBy != api.ApproveByMembers {
			t.Errorf("%s's request: %+v; want dave's, invited by alice, any member deciding", n.id.Name, r)
		}
	}
	if g := groupOf(t, dave, "friends"); !g.Pending {
		t.Fatalf("dave's friends before the approval: %+v, want pending", g)
	}
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	if err := bob.Approve(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "dave in friends", func() bool { return groupOf(t, dave, "friends").Members == 4 })
	for _, n := range []*Node{bob, carol} {
		eventually(t, 20*time.Second, "no request left at "+n.id.Name, func() bool { return len(pendingRequests(t, n)) == 0 })
	}
	talks(t, "friends", bob, carol, dave)
	for _, n := range []*Node{bob, carol, dave} {
		onlyTexts(t, n, "friends")
	}
	if err := carol.Approve(ctx, req.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("carol approving the decided request: %v, want not found", err)
	}
}

// TestAMemberDeniesASharedJoinRequest: carol denies the join request of
// a code alice made for any member's approval: it is gone at every
// member, bob can no longer approve it, dave stays out, and the code is
// spent.
func TestAMemberDeniesASharedJoinRequest(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := trioIn(t, "friends")
	dave := testNode(t, "dave")
	code, err := alice.InviteCode(ctx, "friends", api.WithApprovalByMembers())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	var req api.JoinRequest
	eventually(t, 20*time.Second, "dave's request at carol", func() bool {
		rs := pendingRequests(t, carol)
		if len(rs) == 1 {
			req = rs[0]
		}
		return len(rs) == 1
	})
	if err := carol.Deny(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{alice, bob, carol} {
		eventually(t, 20*time.Second, "the request gone at "+n.id.Name, func() bool { return len(pendingRequests(t, n)) == 0 })
	}
	if err := bob.Approve(ctx, req.ID); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("bob approving the denied request: %v, want not found", err)
	}
	if _, err := dave.Join(ctx, code); !errors.Is(err, api.ErrBadCode) {
		t.Errorf("joining again with the code: %v, want bad code", err)
	}
	talks(t, "friends", alice, bob, carol) // after the denial, in order
	for _, n := range []*Node{alice, bob, carol} {
		if g := groupOf(t, n, "friends"); g.Members != 3 {
			t.Errorf("%s's friends has %d members after the denial, want 3", n.id.Name, g.Members)
		}
	}
	if g := groupOf(t, dave, "friends"); !g.Pending {
		t.Errorf("dave's friends after the denial: %+v, want pending", g)
	}
}

// TestMalformedJoinMessagesChangeNothing: join messages that a member
// sends through the group and that are malformed (oversized, not
// decoding, a bad KeyPackage, a KeyPackage of another peer, a request of
// a member, a request id already known) are rejected by the others: the
// request held stays as it was, no request is added, no event tells of
// one, and nothing shows in the history. A decision on an id nobody holds
// changes no request: it only leaves its mark, which drops the request
// when it comes after it.
func TestMalformedJoinMessagesChangeNothing(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "friends")
	carol, dave, erin := testNode(t, "carol"), testNode(t, "dave"), testNode(t, "erin")
	// Subscribed before carol's request: bob's store holds it before his
	// event for it goes out, so one subscribed after might see that event.
	events, err := bob.Subscribe(t.Context(), "friends")
	if err != nil {
		t.Fatal(err)
	}
	shareJoinOf(t, alice, carol, "friends", bob)
	held := pendingRequests(t, bob)[0] // bob's copy, as he holds it

	g, err := alice.findGroup("friends")
	if err != nil {
		t.Fatal(err)
	}
	kpOf := func(n *Node) []byte {
		b, err := n.newKeyPackage(n.st.NewBatch(), g.suite(), false)
		if err != nil {
			t.Fatal(err)
		}
		return kpMessage(b)
	}
	heldID, _ := hex.DecodeString(held.ID)
	request := func(id []byte, joiner *Node, kp []byte) []byte {
		m := joinRequestMsg{joiner: joiner.id.PeerID, keyPackage: kp, addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/1")}}
		if id == nil {
			id = make([]byte, joinIDLen)
			rand.Read(id)
		}
		copy(m.id[:], id)
		return m.encode()
	}
	erinKP := kpOf(erin)
	bad := []struct {
		name string
		ct   uint16
		body []byte
	}{
		{"oversized", contentJoinRequest, append(request(nil, erin, erinKP), make([]byte, maxJoinMessage)...)},
		{"not decoding", contentJoinRequest, []byte("not a join request")},
		{"bad KeyPackage", contentJoinRequest, request(nil, erin, []byte("not a KeyPackage"))},
		{"another peer's KeyPackage", contentJoinRequest, request(nil, dave, erinKP)},
		{"a member's", contentJoinRequest, request(nil, bob, kpOf(bob))},
		{"an id known", contentJoinRequest, request(heldID, erin, erinKP)},
		{"a decision not decoding", contentJoinDecision, []byte{1, 2, 3}},
		{"a decision on an unknown id", contentJoinDecision, (&joinDecisionMsg{id: [joinIDLen]byte{0xee}, approved: false}).encode()},
	}
	for _, m := range bad {
		sendRaw(t, alice, "friends", m.ct, m.body)
	}
	// The request of that id, once its decision is in, is dropped.
	eventually(t, 20*time.Second, "the decision's mark at bob", func() bool {
		_, err := bob.st.Setting(ctx, scopeJoinDecided, joinMarkKey(g.hexID, "ee00000000000000"))
		return err == nil
	})
	sendRaw(t, alice, "friends", contentJoinRequest, request([]byte{0xee, 0, 0, 0, 0, 0, 0, 0}, erin, erinKP))
	if _, err := alice.Send(ctx, "friends", "after"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob reads alice's text", func() bool { return slices.Contains(texts(t, bob, "friends"), "alice: after") })

	if rs := pendingRequests(t, bob); len(rs) != 1 || rs[0] != held {
		t.Errorf("bob's requests after the malformed messages: %+v; want only %+v", rs, held)
	}
	if g := groupOf(t, bob, "friends"); g.Members != 2 {
		t.Errorf("friends has %d members at bob, want 2", g.Members)
	}
	onlyTexts(t, bob, "friends")
	heldEvents := 0
	for _, ev := range drain(events) {
		switch {
		case ev.Type != api.EventJoinRequest:
		case ev.JoinRequest.ID == held.ID:
			heldEvents++
		default:
			t.Errorf("a join_request event for a malformed message: %+v", ev.JoinRequest)
		}
	}
	if heldEvents != 1 {
		t.Errorf("%d join_request events for carol's request at bob, want 1", heldEvents)
	}
	// The good request still works.
	if err := bob.Approve(ctx, held.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "carol in friends", func() bool { return groupOf(t, carol, "friends").Members == 3 })
}

// TestTwoMembersApprovingAtOnceAddTheJoinerOnce: bob and carol approve
// dave's request at the same moment: dave is added once (one leaf, the
// members agree on four), and the group goes on.
func TestTwoMembersApprovingAtOnceAddTheJoinerOnce(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := trioIn(t, "friends")
	dave := testNode(t, "dave")
	req := shareJoinOf(t, alice, dave, "friends", bob, carol)
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 2)
	for i, n := range []*Node{bob, carol} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = n.Approve(ctx, req.ID)
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, api.ErrNotFound):
			t.Errorf("approval %d: %v, want success or not found (decided by the other)", i, err)
		}
	}
	if ok == 0 {
		t.Fatal("neither approval succeeded")
	}
	t.Logf("%d of the two approvals went through", ok)
	nodes := []*Node{alice, bob, carol, dave}
	eventually(t, 60*time.Second, "dave in friends", func() bool { return groupOf(t, dave, "friends").Members == 4 })
	talks(t, "friends", nodes...)
	for _, n := range nodes {
		eventually(t, 30*time.Second, "the same epoch everywhere", func() bool {
			e0, a0, err0 := alice.EpochAuthenticator(ctx, "friends")
			e, a, err := n.EpochAuthenticator(ctx, "friends")
			return err0 == nil && err == nil && e == e0 && string(a) == string(a0)
		})
		ms, err := n.Members(ctx, "friends")
		if err != nil {
			t.Fatal(err)
		}
		daves := 0
		for _, m := range ms {
			if m.PeerID == dave.id.PeerID.String() {
				daves++
			}
		}
		if len(ms) != 4 || daves != 1 {
			t.Errorf("%s sees %d members, dave %d times; want 4, dave once", n.id.Name, len(ms), daves)
		}
		if rs := pendingRequests(t, n); len(rs) != 0 {
			t.Errorf("%s still holds %+v", n.id.Name, rs)
		}
	}
}

// TestApprovingAMemberIsRefused: once a joiner is added, the requests
// of it are dropped at every member; one that is still held somewhere (as
// it may be for a moment) is refused with exists, in both modes.
func TestApprovingAMemberIsRefused(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "friends")
	carol := testNode(t, "carol")
	shared := shareJoinOf(t, alice, carol, "friends", bob)
	rec, err := bob.readJoinRequest(ctx, shared.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.Approve(ctx, shared.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "carol a member everywhere", func() bool {
		return groupOf(t, alice, "friends").Members == 3 && groupOf(t, bob, "friends").Members == 3 && groupOf(t, carol, "friends").Members == 3
	})
	for _, n := range []*Node{alice, bob} {
		eventually(t, 20*time.Second, "the request dropped at "+n.id.Name, func() bool { return len(pendingRequests(t, n)) == 0 })
	}
	// A copy held still: bob's shared one, alice's own of a code made
	// with her approval.
	keep := func(n *Node, id string, rec joinRequestRecord) {
		raw, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		b := n.st.NewBatch()
		b.PutSetting(scopeJoinRequest, id, raw)
		if err := n.st.Write(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	keep(bob, shared.ID, rec)
	own := rec
	own.Shared, own.InvitedBy, own.Addrs = false, "", nil
	keep(alice, "00112233aabbccdd", own)
	if err := bob.Approve(ctx, shared.ID); !errors.Is(err, api.ErrExists) {
		t.Errorf("approving a member (any member decides): %v, want exists", err)
	}
	if err := alice.Approve(ctx, "00112233aabbccdd"); !errors.Is(err, api.ErrExists) {
		t.Errorf("approving a member (the inviter decides): %v, want exists", err)
	}
	for _, n := range []*Node{alice, bob, carol} {
		if g := groupOf(t, n, "friends"); g.Members != 3 {
			t.Errorf("%s's friends has %d members, want 3", n.id.Name, g.Members)
		}
	}
	// Forgetting the group drops what bob holds of it: a request, the
	// marks of decided ones.
	keep(bob, shared.ID, rec)
	if err := bob.ForgetGroup(ctx, "friends", true); err != nil {
		t.Fatal(err)
	}
	if rs := pendingRequests(t, bob); len(rs) != 0 {
		t.Errorf("bob's requests after forgetting the group: %+v", rs)
	}
	if marks, err := bob.st.Settings(ctx, scopeJoinDecided); err != nil || len(marks) != 0 {
		t.Errorf("bob's join marks after forgetting the group: %d, %v", len(marks), err)
	}
}

// TestARemovedMemberCannotDecideASharedRequest: carol, removed, holds
// no copy of dave's request any more and cannot decide it; a decision in
// her name (as a retained epoch of hers would deliver it) is refused at
// bob, whose copy stays and still lets dave in.
func TestARemovedMemberCannotDecideASharedRequest(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := trioIn(t, "friends")
	dave := testNode(t, "dave")
	req := shareJoinOf(t, alice, dave, "friends", bob, carol)
	carolID := carol.loopSelf(t, "friends")
	if err := alice.Remove(ctx, "friends", "carol"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "carol out", func() bool {
		return groupOf(t, carol, "friends").Removed && groupOf(t, bob, "friends").Members == 2
	})
	eventually(t, 10*time.Second, "carol's copy dropped", func() bool { return len(pendingRequests(t, carol)) == 0 })
	if err := carol.Deny(ctx, req.ID); err == nil {
		t.Error("carol, removed, denied the request")
	}
	id, _ := hex.DecodeString(req.ID)
	deny := joinDecisionMsg{}
	copy(deny.id[:], id)
	deliverAs(t, bob, "friends", carolID, contentJoinDecision, deny.encode())
	if rs := pendingRequests(t, bob); len(rs) != 1 || rs[0].ID != req.ID {
		t.Fatalf("bob's requests after carol's decision: %+v; want dave's still", rs)
	}
	// The same decision from a member is taken (so the refusal above was
	// of carol's, not of the message).
	deliverAs(t, alice, "friends", bob.loopSelf(t, "friends"), contentJoinDecision, deny.encode())
	if rs := pendingRequests(t, alice); len(rs) != 0 {
		t.Errorf("alice's requests after bob's decision: %+v; want none", rs)
	}
	if err := bob.Approve(ctx, req.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "dave in friends", func() bool { return groupOf(t, dave, "friends").Members == 3 })
}

// drain returns the events waiting in ch.
func drain(ch <-chan api.Event) []api.Event {
	var out []api.Event
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// TestDecisionsOnRequestsNotHeldAreBounded: a member sending decisions on
// ids nobody holds leaves at most maxJoinMarks marks at the others; the
// decisions past it are rejected, and the group goes on.
func TestDecisionsOnRequestsNotHeldAreBounded(t *testing.T) {
	old := maxJoinMarks
	maxJoinMarks = 2
	t.Cleanup(func() { maxJoinMarks = old })
	ctx := context.Background()
	alice, bob := pairIn(t, "friends")
	g, err := alice.findGroup("friends")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		sendRaw(t, alice, "friends", contentJoinDecision, (&joinDecisionMsg{id: [joinIDLen]byte{0xd0, byte(i)}}).encode())
	}
	if _, err := alice.Send(ctx, "friends", "after"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob reads alice's text", func() bool { return slices.Contains(texts(t, bob, "friends"), "alice: after") })
	marks := 0
	recs, err := bob.st.Settings(ctx, scopeJoinDecided)
	if err != nil {
		t.Fatal(err)
	}
	for k := range recs {
		if strings.HasPrefix(k, g.hexID+"|") {
			marks++
		}
	}
	if marks != maxJoinMarks {
		t.Errorf("bob keeps %d marks of decisions on requests not held, want %d (the bound)", marks, maxJoinMarks)
	}
}
