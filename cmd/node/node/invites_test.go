package node

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/parley-p2p/parley/store"
)

// storeNode is a node with only a store (plain, in a temp directory): what
// the invite functions use.
func storeNode(t testing.TB) *Node {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.WithoutEncryption(), store.WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Node{st: st, log: slog.New(slog.DiscardHandler)}
}

func putInvite(t testing.TB, st *store.Store, token []byte, expires time.Time) {
	t.Helper()
	rec, _ := json.Marshal(inviteRecord{Group: "00aa", Expires: expires})
	b := st.NewBatch()
	b.PutSetting(scopeInvite, hex.EncodeToString(token), rec)
	if err := st.Write(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}

func testToken(i int) []byte { return []byte(fmt.Sprintf("token-%010d", i)) }

// TestAnInviteLetsOneJoinerIn races joins with one token, many times:
// exactly one is let in.
func TestAnInviteLetsOneJoinerIn(t *testing.T) {
	n := storeNode(t)
	ctx := context.Background()
	now := time.Now()
	const rounds, joiners = 50, 6
	for r := range rounds {
		tok := testToken(r)
		putInvite(t, n.st, tok, now.Add(time.Hour))
		var wg sync.WaitGroup
		var mu sync.Mutex
		in, refused := 0, 0
		start := make(chan struct{})
		for range joiners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				inv, err := n.takeInvite(ctx, tok, now)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && inv.Group == "00aa":
					in++
				case errors.Is(err, errUnknownInvite):
					refused++
				default:
					t.Errorf("round %d: takeInvite = %+v, %v", r, inv, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if in != 1 || refused != joiners-1 {
			t.Fatalf("round %d: %d joins let in, %d refused; want 1 and %d", r, in, refused, joiners-1)
		}
	}
}

func TestAnExpiredInviteIsRefusedAndPurged(t *testing.T) {
	n := storeNode(t)
	ctx := context.Background()
	now := time.Now()
	putInvite(t, n.st, testToken(1), now.Add(-time.Minute)) // expired
	putInvite(t, n.st, testToken(2), now.Add(-time.Hour))   // expired
	putInvite(t, n.st, testToken(3), now.Add(time.Hour))    // valid

	if _, err := n.takeInvite(ctx, testToken(1), now); !errors.Is(err, errExpiredInvite) {
		t.Fatalf("takeInvite of an expired invite: %v, want %v", err, errExpiredInvite)
	}
	if _, err := n.takeInvite(ctx, testToken(1), now); !errors.Is(err, errUnknownInvite) {
		t.Fatalf("takeInvite of a refused expired invite again: %v, want %v (it is deleted)", err, errUnknownInvite)
	}
	if k, err := n.purgeInvites(ctx, now); err != nil || k != 1 {
		t.Fatalf("purgeInvites = %d, %v; want 1 (token 2)", k, err)
	}
	left, err := n.st.Settings(ctx, scopeInvite)
	if err != nil || len(left) != 1 || left[hex.EncodeToString(testToken(3))] == nil {
		t.Fatalf("invites after the purge: %d, %v; want only token 3", len(left), err)
	}
	if _, err := n.takeInvite(ctx, testToken(2), now); !errors.Is(err, errUnknownInvite) {
		t.Fatalf("takeInvite of a purged invite: %v, want %v", err, errUnknownInvite)
	}
	if inv, err := n.takeInvite(ctx, testToken(3), now); err != nil || inv.Group != "00aa" {
		t.Fatalf("takeInvite of a valid invite = %+v, %v", inv, err)
	}
}

func TestOpenPurgesExpiredInvites(t *testing.T) {
	dir := t.TempDir()
	if _, err := Init(dir, "alice", nil, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, storeDirName), store.WithKeyFile(filepath.Join(dir, keyFileName)), store.WithGCInterval(0))
	if err != nil {
		t.Fatal(err)
	}
	putInvite(t, st, testToken(1), time.Now().Add(-time.Second))
	putInvite(t, st, testToken(2), time.Now().Add(time.Hour))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	n := openTestNode(t, dir)
	eventually(t, 10*time.Second, "the expired invite purged", func() bool {
		left, err := n.st.Settings(context.Background(), scopeInvite)
		return err == nil && len(left) == 1 && left[hex.EncodeToString(testToken(2))] != nil
	})
}
