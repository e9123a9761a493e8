package node

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/store"
)

// openStore opens a closed node's store directly, as the node does.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := openDataStore(dir, nil, false, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// damageGroup changes what the node saved of a group, in its store.
func damageGroup(t *testing.T, dir string, gid []byte, damage func(ctx context.Context, st *store.Store, b *store.Batch)) {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, dir)
	defer st.Close()
	b := st.NewBatch()
	damage(ctx, st, b)
	if err := st.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// groupRecordsLeft lists what the store still holds of a group: store
// groups (ordering state, history, file chunks) and settings.
func groupRecordsLeft(t *testing.T, dir string, gid []byte) []string {
	t.Helper()
	ctx := context.Background()
	st := openStore(t, dir)
	defer st.Close()
	var left []string
	ids, err := st.Groups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if bytes.Contains(id, gid) {
			left = append(left, "store group "+hex.EncodeToString(id[:min(len(id), 9)])+"...")
		}
	}
	hexID := hex.EncodeToString(gid)
	for _, scope := range []string{scopeGroup, scopeFile, scopeSending, scopeReceiving, scopeFileDone, scopeAddedBy, scopeInvite} {
		recs, err := st.Settings(ctx, scope)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range recs {
			if strings.Contains(k, hexID) || bytes.Contains(v, []byte(hexID)) {
				left = append(left, "setting "+scope+"/"+k)
			}
		}
	}
	return left
}

func TestDamagedGroupStaysListedAndCanBeForgotten(t *testing.T) {
	garbage := []byte("not a snapshot, not a head: 64 bytes flipped in a value log file")
	tests := []struct {
		name   string
		damage func(ctx context.Context, st *store.Store, b *store.Batch, gid []byte) error
		want   string
		// renamed: the group's name is lost with its record; it is
		// listed under the first 8 digits of its id.
		renamed bool
	}{
		{"epoch snapshots overwritten", func(ctx context.Context, st *store.Store, b *store.Batch, gid []byte) error {
			epochs, err := st.Epochs(ctx, gid)
			for _, e := range epochs {
				b.PutEpoch(gid, e.ID, e.Epoch, garbage)
			}
			return err
		}, damageMalformed, false},
		{"head overwritten", func(_ context.Context, _ *store.Store, b *store.Batch, gid []byte) error {
			b.SetHead(gid, garbage)
			return nil
		}, damageMalformed, false},
		{"ordering state gone", func(_ context.Context, _ *store.Store, b *store.Batch, gid []byte) error {
			b.DeleteGroup(gid)
			return nil
		}, damageMissing, false},
		{"group record overwritten", func(_ context.Context, _ *store.Store, b *store.Batch, gid []byte) error {
			b.PutSetting(scopeGroup, hex.EncodeToString(gid), garbage)
			return nil
		}, damageRecord, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			if _, err := Init(dir, "alice", nil, nil); err != nil {
				t.Fatal(err)
			}
			n := openTestNode(t, dir)
			broken, err := n.CreateGroup(ctx, "broken")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := n.CreateGroup(ctx, "keep"); err != nil {
				t.Fatal(err)
			}
			for _, g := range []string{"broken", "keep"} {
				if _, err := n.Send(ctx, g, "before, in "+g); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := n.InviteCode(ctx, "broken"); err != nil {
				t.Fatal(err)
			}
			n.Close()
			gid, _ := hex.DecodeString(broken.ID)
			damageGroup(t, dir, gid, func(ctx context.Context, st *store.Store, b *store.Batch) {
				if err := tt.damage(ctx, st, b, gid); err != nil {
					t.Fatal(err)
				}
			})

			n = openTestNode(t, dir)
			name, ref := "broken", broken.ID
			if tt.renamed {
				name = broken.ID[:8]
			}
			got := groupOf(t, n, name)
			if got.ID != broken.ID || got.Damaged != tt.want || got.Pending || got.Removed {
				t.Fatalf("damaged group listed as %+v, want it listed with damaged %q", got, tt.want)
			}
			if g := groupOf(t, n, "keep"); g.Damaged != "" || g.Members != 1 {
				t.Errorf("the other group: %+v, want it whole", g)
			}
			st, err := n.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if i := slices.IndexFunc(st.Groups, func(g api.GroupStatus) bool { return g.ID == broken.ID }); i < 0 || st.Groups[i].Damaged != tt.want {
				t.Errorf("status groups %+v lack the damaged group", st.Groups)
			}

			// The rest of the node works; the damaged group says what to do.
			if _, err := n.Send(ctx, "keep", "after, in keep"); err != nil {
				t.Errorf("send to the whole group: %v", err)
			}
			_, err = n.Send(ctx, ref, "after, in broken")
			if !errors.Is(err, api.ErrDamaged) || !strings.Contains(err.Error(), tt.want) ||
				!strings.Contains(err.Error(), "'parley group forget "+name+"'") || strings.Contains(err.Error(), "\n") {
				t.Errorf("send to the damaged group: %v, want one line with ErrDamaged, the reason and the way out", err)
			}
			for what, err := range map[string]error{
				"invite":      n.Invite(ctx, ref, "bob"),
				"leave":       n.Leave(ctx, ref),
				"remove":      n.Remove(ctx, ref, "bob"),
				"update keys": n.UpdateKeys(ctx, ref),
			} {
				if !errors.Is(err, api.ErrDamaged) {
					t.Errorf("%s in the damaged group: %v, want ErrDamaged", what, err)
				}
			}
			if _, err := n.Members(ctx, ref); !errors.Is(err, api.ErrDamaged) {
				t.Errorf("members of the damaged group: %v, want ErrDamaged", err)
			}
			if _, err := n.InviteCode(ctx, ref); !errors.Is(err, api.ErrDamaged) {
				t.Errorf("invite code of the damaged group: %v, want ErrDamaged", err)
			}
			// Its history is stored apart from the ordering state: still readable.
			if got, want := texts(t, n, ref), []string{"alice: before, in broken"}; !slices.Equal(got, want) {
				t.Errorf("history of the damaged group = %q, want %q", got, want)
			}

			if err := n.ForgetGroup(ctx, name, false); err != nil { // as the way out says
				t.Fatalf("forget the damaged group: %v", err)
			}
			if gs, _ := n.Groups(ctx); len(gs) != 1 || gs[0].Name != "keep" {
				t.Errorf("groups after forget = %+v, want keep alone", gs)
			}
			if _, err := n.Read(ctx, ref, 0, 0); !errors.Is(err, api.ErrNotFound) {
				t.Errorf("read after forget: %v, want ErrNotFound", err)
			}
			n.Close()
			if left := groupRecordsLeft(t, dir, gid); len(left) > 0 {
				t.Errorf("records of the forgotten group left in the store: %q", left)
			}
			n = openTestNode(t, dir)
			if gs, _ := n.Groups(ctx); len(gs) != 1 || gs[0].Name != "keep" || gs[0].Damaged != "" {
				t.Errorf("groups after a restart = %+v, want keep alone", gs)
			}
			if got, want := texts(t, n, "keep"), []string{"alice: before, in keep", "alice: after, in keep"}; !slices.Equal(got, want) {
				t.Errorf("history of the other group = %q, want %q", got, want)
			}
		})
	}
}

func TestForgetRefusesAGroupYouAreIn(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := Init(dir, "alice", nil, nil); err != nil {
		t.Fatal(err)
	}
	n := openTestNode(t, dir)
	club, err := n.CreateGroup(ctx, "club")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Send(ctx, "club", "still here"); err != nil {
		t.Fatal(err)
	}
	err = n.ForgetGroup(ctx, "club", false)
	if !errors.Is(err, api.ErrInvalid) || !strings.Contains(err.Error(), "'parley leave club'") {
		t.Errorf("forget a group you are in: %v, want ErrInvalid telling to leave first", err)
	}
	if _, err := n.Send(ctx, "club", "and still working"); err != nil {
		t.Errorf("send after a refused forget: %v", err)
	}
	if err := n.ForgetGroup(ctx, "nope", false); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("forget an unknown group: %v, want ErrNotFound", err)
	}
	if err := n.ForgetGroup(ctx, "club", true); err != nil {
		t.Fatalf("forget --force: %v", err)
	}
	if gs, _ := n.Groups(ctx); len(gs) != 0 {
		t.Errorf("groups after forget --force = %+v, want none", gs)
	}
	n.Close()
	gid, _ := hex.DecodeString(club.ID)
	if left := groupRecordsLeft(t, dir, gid); len(left) > 0 {
		t.Errorf("records of the forgotten group left in the store: %q", left)
	}
}

func TestRemovedMemberForgetsTheGroup(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "g")
	if err := bob.ForgetGroup(ctx, "g", false); !errors.Is(err, api.ErrInvalid) {
		t.Errorf("forget while a member: %v, want ErrInvalid", err)
	}
	if err := alice.Remove(ctx, "g", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob removed", func() bool { return groupOf(t, bob, "g").Removed })
	if err := bob.ForgetGroup(ctx, "g", false); err != nil {
		t.Fatalf("forget after removal: %v", err)
	}
	if gs, _ := bob.Groups(ctx); len(gs) != 0 {
		t.Errorf("bob's groups after forget = %+v, want none", gs)
	}
}

// TestDamagedMemberRejoins: a member whose state is damaged is removed and
// invited again; the Welcome replaces the damaged state and the history
// stays.
func TestDamagedMemberRejoins(t *testing.T) {
	ctx := context.Background()
	alice := testNode(t, "alice")
	bob, bobDir := testNodeIn(t, "bob")
	befriend(t, alice, bob)
	g, err := alice.CreateGroup(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, "g", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob in", func() bool { return groupOf(t, bob, "g").Members == 2 })
	if _, err := alice.Send(ctx, "g", "one"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob has one", func() bool { return len(texts(t, bob, "g")) == 1 })
	bobAddrs := listenAddrs(bob)
	bob.Close()
	gid, _ := hex.DecodeString(g.ID)
	damageGroup(t, bobDir, gid, func(ctx context.Context, st *store.Store, b *store.Batch) {
		epochs, err := st.Epochs(ctx, gid)
		if err != nil || len(epochs) == 0 {
			t.Fatalf("bob's epochs: %v, %v", epochs, err)
		}
		for _, e := range epochs {
			b.PutEpoch(gid, e.ID, e.Epoch, []byte("garbage"))
		}
	})
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	if got := groupOf(t, bob, "g"); got.Damaged != damageMalformed {
		t.Fatalf("bob's group after the damage: %+v, want it damaged", got)
	}

	reinvite(t, alice, bob, "g", 20*time.Second)
	if _, err := bob.Send(ctx, "g", "two"); err != nil {
		t.Fatalf("send after rejoining: %v", err)
	}
	eventually(t, 20*time.Second, "alice has two", func() bool { return len(texts(t, alice, "g")) == 2 })
	if got := texts(t, bob, "g"); len(got) != 2 || got[0] != "alice: one" {
		t.Errorf("bob's history after rejoining = %q, want the old message kept", got)
	}
	// The damaged state is gone for good: bob restarts into the group.
	bob.Close()
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	if got := groupOf(t, bob, "g"); got.Damaged != "" || got.Members != 2 {
		t.Errorf("bob's group after a restart: %+v", got)
	}
}

// reinvite is the way back of a member whose group state is damaged, in a
// group of two: alice removes bob, invites him again, and he is back in
// within timeout, the damage gone.
func reinvite(t *testing.T, alice, bob *Node, group string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	if err := alice.Remove(ctx, group, "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob out at alice", func() bool { return groupOf(t, alice, group).Members == 1 })
	if err := alice.Invite(ctx, group, "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, timeout, "bob back in", func() bool {
		got := groupOf(t, bob, group)
		return got.Damaged == "" && got.Members == 2
	})
}
