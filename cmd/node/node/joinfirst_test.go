package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestAJoinerGetsTheFirstTextOfItsEpochInItsFirstAnswer: alice invites
// carol into her group with bob and sends a text as soon as her commit is
// saved, before carol has her Welcome, so gossip cannot bring it to carol.
// Members answer a request without what gossip brought them moments ago
// (it is on its way to the requester too), and carol had to ask again a
// GossipGrace later: 1.4 s from invite to text at 100 and 1,000 members
// (BenchmarkCommitAtSize). The answers to the member the epoch added leave
// nothing of that epoch out, so carol was never told of a message left out.
func TestAJoinerGetsTheFirstTextOfItsEpochInItsFirstAnswer(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "trio")
	carol := testNode(t, "carol")
	befriend(t, alice, carol)
	if _, err := bob.Send(ctx, "trio", "before carol"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "alice has bob's text", func() bool { return len(texts(t, alice, "trio")) == 1 })
	events, err := alice.Subscribe(t.Context(), "trio")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, "trio", "carol"); err != nil {
		t.Fatal(err)
	}
	// The commit that adds carol is saved: the text goes on her epoch.
	nextEvent(t, events, "carol added", func(ev api.Event) bool {
		return ev.Type == api.EventMembership && ev.Membership != nil && slices.Contains(ev.Membership.Added, "carol")
	})
	if _, err := alice.Send(ctx, "trio", "welcome carol"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "carol has alice's text", func() bool {
		_, err := carol.findGroup("trio")
		return err == nil && len(texts(t, carol, "trio")) == 1
	})
	if got := texts(t, carol, "trio"); got[0] != "alice: welcome carol" {
		t.Fatalf("carol's history: %v, want alice's text alone (bob's was sent before she was added)", got)
	}
	st := loopStats(t, carol, "trio")
	if st.Sync.LeftOut != 0 || st.Sync.LeftOutAsks != 0 {
		t.Errorf("carol was told %d messages were left out of answers and asked again %d times, want none: the epoch that added her", st.Sync.LeftOut, st.Sync.LeftOutAsks)
	}
	t.Logf("carol sent %d catch-up requests", st.SyncRequests)
}
