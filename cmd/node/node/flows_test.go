package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

func groupOf(t testing.TB, n *Node, name string) api.Group {
	t.Helper()
	gs, err := n.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gs {
		if g.Name == name {
			return g
		}
	}
	return api.Group{}
}

func TestStrangerJoinsWithAnInviteCode(t *testing.T) {
	ctx := context.Background()
	alice, dave := testNode(t, "alice"), testNode(t, "dave")
	if _, err := alice.CreateGroup(ctx, "club"); err != nil {
		t.Fatal(err)
	}
	code, err := alice.InviteCode(ctx, "club")
	if err != nil {
		t.Fatal(err)
	}
	g, err := dave.Join(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if !g.Pending {
		t.Errorf("group after join = %+v, want pending", g)
	}
	eventually(t, 20*time.Second, "dave in the club", func() bool {
		g := groupOf(t, dave, "club")
		return !g.Pending && g.Members == 2
	})
	if _, err := dave.Send(ctx, "club", "hi all"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "alice reads dave", func() bool { return len(texts(t, alice, "club")) == 1 })
	// The code was for one use.
	eve := testNode(t, "eve")
	if _, err := eve.Join(ctx, code); !errors.Is(err, api.ErrBadCode) || !strings.Contains(err.Error(), "refused: unknown or used invite code") {
		t.Errorf("second use of the invite code: %v, want ErrBadCode with the inviter's reason", err)
	}
	if _, err := eve.Join(ctx, "parley-invite:garbage"); !errors.Is(err, api.ErrBadCode) {
		t.Errorf("garbage code: %v, want ErrBadCode", err)
	}
}

func TestInviteeOfflineJoinsWhenItComesUp(t *testing.T) {
	ctx := context.Background()
	alice, bob := testNode(t, "alice"), testNode(t, "bob")
	carol, carolDir := testNodeIn(t, "carol")
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	carolAddrs := listenAddrs(carol)
	carol.Close() // carol is offline from here
	if _, err := alice.CreateGroup(ctx, "trip"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol"} {
		if err := alice.Invite(ctx, "trip", who); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "three members", func() bool { return groupOf(t, bob, "trip").Members == 3 })
	if _, err := bob.Send(ctx, "trip", "before carol came"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	carol = openTestNodeAt(t, carolDir, carolAddrs...)
	eventually(t, 30*time.Second, "carol in the group", func() bool { return groupOf(t, carol, "trip").Members == 3 })
	if _, err := carol.Send(ctx, "trip", "I'm here"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob reads carol", func() bool { return len(texts(t, bob, "trip")) == 2 })
}

func TestRestartedNodeCarriesOn(t *testing.T) {
	ctx := context.Background()
	alice, bob, bobDir := pairInDir(t, "pair")
	if _, err := bob.Send(ctx, "pair", "one"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "alice has one", func() bool { return len(texts(t, alice, "pair")) == 1 })
	bobAddrs := listenAddrs(bob)
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Send(ctx, "pair", "two, while bob is down"); err != nil {
		t.Fatal(err)
	}
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	if _, err := bob.Send(ctx, "pair", "three"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{alice, bob} {
		eventually(t, 30*time.Second, n.id.Name+" has all three", func() bool { return len(texts(t, n, "pair")) == 3 })
	}
	if got := texts(t, bob, "pair"); got[0] != "bob: one" {
		t.Errorf("bob's history after restart: %v", got)
	}
}

// TestLeaveWhileTheOtherMemberIsDownIsCommittedWhenItIsBack: alice leaves
// a group of two while bob, who had heard from her, is down. Only bob can
// commit her leave, and no head tells him he lacks its proposal: alice's
// node asks his once he is back, and he asks back for it and commits it
// (with the code before, alice stayed in for good).
func TestLeaveWhileTheOtherMemberIsDownIsCommittedWhenItIsBack(t *testing.T) {
	ctx := context.Background()
	alice, bob, bobDir := pairInDir(t, "pair")
	if _, err := alice.Send(ctx, "pair", "hello bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob hears from alice", func() bool { return len(texts(t, bob, "pair")) == 1 })
	bobAddrs := listenAddrs(bob)
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	if err := alice.Leave(ctx, "pair"); err != nil {
		t.Fatal(err)
	}
	// Longer than the committers' turns: alice's leave waits for bob.
	time.Sleep(5 * time.Second)
	if groupOf(t, alice, "pair").Removed {
		t.Fatal("alice is out while bob, the only member who can commit her leave, is down")
	}
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	eventually(t, 60*time.Second, "alice out and bob alone", func() bool {
		return groupOf(t, alice, "pair").Removed && groupOf(t, bob, "pair").Members == 1
	})
}

func TestRemovedAndLeavingMembersReadNoMore(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := testNode(t, "alice"), testNode(t, "bob"), testNode(t, "carol")
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	if _, err := alice.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol"} {
		if err := alice.Invite(ctx, "g", who); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{bob, carol} {
		eventually(t, 20*time.Second, "3 members", func() bool { return groupOf(t, n, "g").Members == 3 })
	}
	if err := alice.Remove(ctx, "g", "nobody"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("removing a non-member: %v", err)
	}
	if err := alice.Remove(ctx, "g", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob removed", func() bool { return groupOf(t, bob, "g").Removed })
	if err := carol.Leave(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "carol gone", func() bool { return groupOf(t, carol, "g").Removed && groupOf(t, alice, "g").Members == 1 })
	if _, err := alice.Send(ctx, "g", "secret after they left"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	for _, n := range []*Node{bob, carol} {
		if got := texts(t, n, "g"); len(got) != 0 {
			t.Errorf("%s read %v after leaving", n.id.Name, got)
		}
		if _, err := n.Send(ctx, "g", "still here?"); !errors.Is(err, api.ErrNotMember) {
			t.Errorf("%s sending after removal: %v", n.id.Name, err)
		}
	}
}

func TestFileArrivesIntact(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "files")
	data := make([]byte, 3<<20+12345)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "photo.bin")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFile(ctx, "files", path); err != nil {
		t.Fatal(err)
	}
	var got string
	eventually(t, 60*time.Second, "the file at bob", func() bool {
		msgs, _ := bob.Read(ctx, "files", 0, 0)
		for _, m := range msgs {
			if m.File != nil && m.File.Path != "" {
				got = m.File.Path
				return true
			}
		}
		return false
	})
	back, err := os.ReadFile(got)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("received file differs (%v)", err)
	}
	if filepath.Base(got) != "photo.bin" {
		t.Errorf("received as %s", got)
	}
	// The chunks are saved; neither the sender's outbox nor either
	// member's retained log keeps them in memory (ordering.Archive).
	for _, n := range []*Node{alice, bob} {
		g := n.runner(groupOf(t, n, "files").ID)
		held := 0
		if err := g.do(ctx, func() error { held = g.loop.HeldBytes(); return nil }); err != nil {
			t.Fatal(err)
		}
		if held > 256<<10 {
			t.Errorf("a member holds %d bytes of messages in memory after a file of %d", held, len(data))
		}
	}
}

func TestConcurrentRemoveAndAddConverge(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, dave, erin := testNode(t, "alice"), testNode(t, "bob"), testNode(t, "carol"), testNode(t, "dave"), testNode(t, "erin")
	for _, n := range []*Node{bob, carol, dave} {
		befriend(t, alice, n)
	}
	befriend(t, bob, erin)
	if _, err := alice.CreateGroup(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol", "dave"} {
		if err := alice.Invite(ctx, "busy", who); err != nil {
			t.Fatal(err)
		}
	}
	all := []*Node{alice, bob, carol, dave}
	for _, n := range all {
		eventually(t, 30*time.Second, n.id.Name+" sees 4 members", func() bool { return groupOf(t, n, "busy").Members == 4 })
	}
	// At the same moment: alice removes dave, bob adds erin.
	errc := make(chan error, 2)
	go func() { errc <- alice.Remove(ctx, "busy", "dave") }()
	go func() { errc <- bob.Invite(ctx, "busy", "erin") }()
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	final := []*Node{alice, bob, carol, erin}
	var state string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last state: %s", state)
		}
	})
	eventually(t, 60*time.Second, "everyone on one epoch with alice, bob, carol, erin", func() bool {
		state = ""
		for _, n := range append(final, dave) {
			g := groupOf(t, n, "busy")
			state += fmt.Sprintf("%s: epoch %d, %d members, pending %v, removed %v; ", n.id.Name, g.Epoch, g.Members, g.Pending, g.Removed)
		}
		var epoch uint64
		for i, n := range final {
			g := groupOf(t, n, "busy")
			if g.Members != 4 || g.Pending {
				return false
			}
			if i == 0 {
				epoch = g.Epoch
			} else if g.Epoch != epoch {
				return false
			}
		}
		return groupOf(t, dave, "busy").Removed
	})
	members, err := carol.Members(ctx, "busy")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range members {
		names = append(names, m.Name)
	}
	if len(names) != 4 || names[0] != "alice" || names[1] != "bob" || names[2] != "carol" || names[3] != "erin" {
		t.Errorf("carol sees members %v", names)
	}
}

// TestRemovedMemberInvitedBackTakesPartAgain: a member removed and then
// invited back into the same group starts it afresh from the Welcome,
// sends and reads, and after a restart still does. (The node kept the
// ordering state of its first membership beside the new one: the new
// loop logged envelopes the old one had logged, the write failed as a
// duplicate and the group stopped; a chaos run found it.)
func TestRemovedMemberInvitedBackTakesPartAgain(t *testing.T) {
	ctx := context.Background()
	alice := testNode(t, "alice")
	bob, bobDir := testNodeIn(t, "bob")
	befriend(t, alice, bob)
	if _, err := alice.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for round := range 2 {
		if err := alice.Invite(ctx, "g", "bob"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "bob in", func() bool { g := groupOf(t, bob, "g"); return g.Members == 2 && !g.Removed })
		if _, err := bob.Send(ctx, "g", fmt.Sprint("bob in round ", round)); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(ctx, "g", fmt.Sprint("alice in round ", round)); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "both texts at both", func() bool {
			return slices.Contains(texts(t, alice, "g"), fmt.Sprint("bob: bob in round ", round)) &&
				slices.Contains(texts(t, bob, "g"), fmt.Sprint("alice: alice in round ", round))
		})
		if err := alice.Remove(ctx, "g", "bob"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, "bob removed", func() bool { return groupOf(t, bob, "g").Removed })
	}
	if err := alice.Invite(ctx, "g", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob in again", func() bool { g := groupOf(t, bob, "g"); return g.Members == 2 && !g.Removed })
	addrs := listenAddrs(bob)
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	bob = openTestNodeAt(t, bobDir, addrs...)
	if g := groupOf(t, bob, "g"); g.Removed || g.Damaged != "" || g.Members != 2 {
		t.Fatalf("bob's group after a restart: %+v", g)
	}
	if _, err := bob.Send(ctx, "g", "after the restart"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "alice has it", func() bool { return slices.Contains(texts(t, alice, "g"), "bob: after the restart") })
}

// TestMembershipEventsSayWhoAsked: a member that watches the group sees
// "alice removed bob" when alice removes bob, whichever member commits
// it, and "carol left" when carol leaves (a SelfRemove another member
// commits): the event names who asked, not who committed.
func TestMembershipEventsSayWhoAsked(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol, dave := testNode(t, "alice"), testNode(t, "bob"), testNode(t, "carol"), testNode(t, "dave")
	for _, n := range []*Node{bob, carol, dave} {
		befriend(t, alice, n)
	}
	if _, err := alice.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol", "dave"} {
		if err := alice.Invite(ctx, "g", who); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 20*time.Second, "4 members at dave", func() bool { return groupOf(t, dave, "g").Members == 4 })
	events, err := dave.Subscribe(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Remove(ctx, "g", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob out at dave", func() bool { return groupOf(t, dave, "g").Members == 3 })
	if err := carol.Leave(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "carol out at dave", func() bool { return groupOf(t, dave, "g").Members == 2 })
	want := map[string]string{"bob": "alice", "carol": "carol"}
	deadline := time.After(10 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-events:
			if ev.Type != api.EventMembership || ev.Membership == nil {
				continue
			}
			for i, name := range ev.Membership.Removed {
				by := ""
				if i < len(ev.Membership.RemovedBy) {
					by = ev.Membership.RemovedBy[i]
				}
				if w, ok := want[name]; ok && by != w {
					t.Errorf("%s's removal: removed_by %q, want %q", name, by, w)
				}
				delete(want, name)
			}
		case <-deadline:
			t.Fatalf("no membership event for %v", want)
		}
	}
}
