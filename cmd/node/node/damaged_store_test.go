package node

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/store"
)

// lockedBuffer is a log destination the test reads while the node writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// damageTable inverts 64 bytes of a table of the closed store of the data
// directory dir, as the chaos test does: at offset at(size) of the newest
// table (newest: true) or of the oldest.
func damageTable(t *testing.T, dir string, newest bool, at func(size int) int) string {
	t.Helper()
	tables, err := filepath.Glob(filepath.Join(dir, storeDirName, "*.sst"))
	if err != nil || len(tables) == 0 {
		t.Fatalf("no table in the store: %v", err)
	}
	sort.Strings(tables)
	path := tables[0]
	if newest {
		path = tables[len(tables)-1]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	off := max(0, min(at(len(data)), len(data)-64))
	for i := off; i < off+64 && i < len(data); i++ {
		data[i] ^= 0xff
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Base(path)
}

func TestDamagedStoreIsSalvagedAndTheMemberRejoins(t *testing.T) {
	ctx := context.Background()
	alice := testNode(t, "alice")
	bob, bobDir := testNodeIn(t, "bob")
	befriend(t, alice, bob)
	befriend(t, bob, alice)
	if _, err := alice.CreateGroup(ctx, "g"); err != nil {
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
	bobID := bob.Self().PeerID
	bobAddrs := listenAddrs(bob)
	if err := bob.Close(); err != nil {
		t.Fatal(err)
	}
	// The newest table holds what bob did since Init; 200 bytes in, its
	// first data block.
	damaged := damageTable(t, bobDir, true, func(int) int { return 200 })
	if st, err := openDataStore(bobDir, nil, false, slog.New(slog.DiscardHandler)); err == nil {
		st.Close()
		t.Fatalf("the store opens despite the damage to %s", damaged)
	} else if !errors.Is(err, store.ErrDamagedTable) {
		t.Fatalf("opening the damaged store: %v, want ErrDamagedTable", err)
	}

	logs := &lockedBuffer{}
	bob, err := Open(ctx, Config{
		Dir: bobDir, Listen: bobAddrs, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		TickInterval: 50 * time.Millisecond, UpdateInterval: -1,
	})
	if err != nil {
		t.Fatalf("bob does not start after the damage: %v", err)
	}
	t.Cleanup(func() { bob.Close() })
	if bob.Self().PeerID != bobID {
		t.Errorf("bob's peer ID after the salvage = %s, want %s", bob.Self().PeerID, bobID)
	}
	contacts, err := bob.Contacts(ctx)
	if err != nil || len(contacts) != 1 || contacts[0].Name != "alice" {
		t.Errorf("bob's contacts after the salvage = %+v, %v; want alice", contacts, err)
	}
	g := groupOf(t, bob, "g")
	if g.Damaged != damageSalvaged {
		t.Fatalf("bob's group after the salvage: %+v, want it damaged (%q)", g, damageSalvaged)
	}
	if _, err := bob.Send(ctx, "g", "lost"); !errors.Is(err, api.ErrDamaged) || !strings.Contains(err.Error(), "parley group forget g") {
		t.Errorf("sending in the salvaged group: %v, want ErrDamaged with the way out", err)
	}
	st, err := bob.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Groups) != 1 || st.Groups[0].State != api.StateDamaged {
		t.Errorf("status after the salvage: %+v, want the group damaged", st.Groups)
	}
	moved, _ := filepath.Glob(filepath.Join(bobDir, storeDirName+".damaged-*"))
	if len(moved) != 1 {
		t.Fatalf("damaged store directories: %q, want one", moved)
	}
	if _, err := os.Stat(filepath.Join(moved[0], damaged)); err != nil {
		t.Errorf("the damaged table is not kept: %v", err)
	}
	log := logs.String()
	for _, want := range []string{"level=ERROR msg=\"store salvaged", damaged, moved[0], "not_kept="} {
		if !strings.Contains(log, want) {
			t.Errorf("the log does not say %q:\n%s", want, log)
		}
	}

	// The way out: forget, be removed and invited again.
	if err := bob.ForgetGroup(ctx, "g", false); err != nil {
		t.Fatal(err)
	}
	reinvite(t, alice, bob, "g", 30*time.Second)
	if _, err := bob.Send(ctx, "g", "two"); err != nil {
		t.Fatalf("send after rejoining: %v", err)
	}
	eventually(t, 20*time.Second, "alice has two", func() bool {
		got := texts(t, alice, "g")
		return len(got) == 2 && got[1] == "bob: two"
	})
	if _, err := alice.Send(ctx, "g", "three"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob has three", func() bool {
		got := texts(t, bob, "g")
		return len(got) > 0 && got[len(got)-1] == "alice: three"
	})

	// A restart finds the group whole: the salvage mark is gone.
	bob.Close()
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	if got := groupOf(t, bob, "g"); got.Damaged != "" || got.Members != 2 {
		t.Errorf("bob's group after a restart: %+v", got)
	}
	if marks, err := bob.st.Settings(ctx, scopeSalvaged); err != nil || len(marks) != 0 {
		t.Errorf("salvage marks after rejoining and a restart: %v, %v", marks, err)
	}
	if _, err := os.Stat(moved[0]); err != nil {
		t.Errorf("the damaged store directory is gone: %v", err)
	}

	// An invitation while bob is offline uses the KeyPackage of the
	// contact code he gave before the damage (his last-resort one): the
	// salvage kept its private keys, so he can open the Welcome.
	bob.Close()
	if _, err := alice.CreateGroup(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, "h", "bob"); err != nil {
		t.Fatal(err)
	}
	bob = openTestNodeAt(t, bobDir, bobAddrs...)
	eventually(t, 30*time.Second, "bob in h, invited while offline", func() bool {
		for _, g := range groupsOf(t, bob) {
			if g.Name == "h" && !g.Pending && g.Members == 2 {
				return true
			}
		}
		return false
	})
}

func groupsOf(t testing.TB, n *Node) []api.Group {
	t.Helper()
	gs, err := n.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return gs
}

func TestDamagedStoreWithoutItsIdentityFailsAndKeepsIt(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, "carol", nil, nil); err != nil {
		t.Fatal(err)
	}
	// Init's only table holds the identity; its index is made unreadable.
	damageTable(t, dir, false, func(size int) int { return size - 100 })
	_, err := Open(context.Background(), Config{Dir: dir, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err == nil {
		t.Fatal("the node opened without its identity")
	}
	path := filepath.Join(dir, storeDirName)
	if !errors.Is(err, store.ErrIdentityLost) || !strings.Contains(err.Error(), "identity is lost") || !strings.Contains(err.Error(), path) {
		t.Errorf("error = %v; want it to say the identity is lost and where the damaged store is", err)
	}
	if moved, _ := filepath.Glob(filepath.Join(dir, storeDirName+".*")); len(moved) != 0 {
		t.Errorf("the damaged store was moved (%q) although nothing was salvaged", moved)
	}
}

func TestPendingJoinIsListedDamagedAfterASalvage(t *testing.T) {
	ctx := context.Background()
	alice := testNode(t, "alice")
	carol, carolDir := testNodeIn(t, "carol")
	if _, err := alice.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	// Groups of her own fill carol's table past its first block, where
	// the damage goes.
	for _, name := range []string{"own-1", "own-2", "own-3"} {
		if _, err := carol.CreateGroup(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	code, err := alice.InviteCode(ctx, "friends", api.WithApproval())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Join(ctx, code); err != nil {
		t.Fatal(err)
	}
	if g := groupOf(t, carol, "friends"); !g.Pending {
		t.Fatalf("carol's friends before the damage: %+v, want pending", g)
	}
	carolID := carol.Self().PeerID
	if err := carol.Close(); err != nil {
		t.Fatal(err)
	}
	damaged := damageTable(t, carolDir, true, func(int) int { return 200 })
	if st, err := openDataStore(carolDir, nil, false, slog.New(slog.DiscardHandler)); err == nil {
		st.Close()
		t.Fatalf("the store opens despite the damage to %s", damaged)
	}
	// The KeyPackage the Welcome would be sealed to is not kept: the
	// pending join can never complete, so it is listed damaged.
	carol = openTestNode(t, carolDir)
	if carol.Self().PeerID != carolID {
		t.Errorf("carol's peer ID after the salvage = %s, want %s", carol.Self().PeerID, carolID)
	}
	for _, name := range []string{"friends", "own-1", "own-2", "own-3"} {
		if g := groupOf(t, carol, name); g.Damaged != damageSalvaged || g.Pending {
			t.Errorf("carol's %s after the salvage: %+v, want it damaged (%q)", name, g, damageSalvaged)
		}
	}
}
