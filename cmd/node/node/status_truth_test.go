package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// groupStatus returns the status of the node's group of that name.
func groupStatus(t testing.TB, n *Node, name string) api.GroupStatus {
	t.Helper()
	st, err := n.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range st.Groups {
		if g.Name == name {
			return g
		}
	}
	t.Fatalf("no group %q in the status", name)
	return api.GroupStatus{}
}

// TestStatusFiguresAddUp: while the only other member is down, the
// sender's status counts in OUTBOX its messages of an epoch he has not
// acknowledged, FINAL stays below EPOCH, and the state says why they wait
// (offline, with the count); once the member is back, the outbox drains
// to 0, FINAL reaches EPOCH and the state is ok. Before the health report, OUTBOX
// counted file chunks and never drained, and FINAL stayed 0 at the
// group's creator.
func TestStatusFiguresAddUp(t *testing.T) {
	ctx := context.Background()
	alice, bob, bobDir := pairInDir(t, "club")
	eventually(t, 20*time.Second, "alice's group ok, its epoch final", func() bool {
		g := groupStatus(t, alice, "club")
		return g.State == api.StateOK && g.FinalEpoch == g.Epoch && g.Outbox == 0
	})
	addrs := listenAddrs(bob)
	bob.Close()
	// A new epoch that bob has not acknowledged: not final while he is
	// down, nor are the messages sent in it.
	before := groupStatus(t, alice, "club").Epoch
	if err := alice.UpdateKeys(ctx, "club"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "alice on a new epoch", func() bool { return groupStatus(t, alice, "club").Epoch > before })
	for _, text := range []string{"one", "two"} {
		if _, err := alice.Send(ctx, "club", text); err != nil {
			t.Fatal(err)
		}
	}
	// The status view follows within about a second.
	eventually(t, 30*time.Second, "alice's status counts the two waiting", func() bool {
		g := groupStatus(t, alice, "club")
		return g.OnlinePeers == 0 && g.Outbox == 2
	})
	g := groupStatus(t, alice, "club")
	if g.Outbox != 2 || g.FinalEpoch >= g.Epoch || g.State != api.StateOffline || !strings.Contains(g.Reason, "2 messages of yours wait") {
		t.Errorf("alice's status with bob down = outbox %d, final %d, epoch %d, state %q (%s); want outbox 2, final below epoch, offline saying 2 messages wait",
			g.Outbox, g.FinalEpoch, g.Epoch, g.State, g.Reason)
	}
	bob = openTestNodeAt(t, bobDir, addrs...)
	eventually(t, 30*time.Second, "bob has both", func() bool { return len(texts(t, bob, "club")) == 2 })
	eventually(t, 30*time.Second, "alice's outbox drained and her epoch final", func() bool {
		g := groupStatus(t, alice, "club")
		return g.Outbox == 0 && g.FinalEpoch == g.Epoch && g.State == api.StateOK
	})
	eventually(t, 30*time.Second, "bob ok with everything final", func() bool {
		g := groupStatus(t, bob, "club")
		return g.State == api.StateOK && g.FinalEpoch == g.Epoch && g.Missing == 0
	})
}
