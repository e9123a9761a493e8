package node

import (
	"context"
	"testing"
	"time"
)

// Members and contacts say how this node reaches each peer it is
// connected to (here directly; through a relay in the chaos package's
// TestNATTraversal), and nothing for itself or a peer that is offline.
func TestMembersAndContactsSayHowPeersAreReached(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "friends")
	via := func() (self, other string, online bool) {
		ms, err := alice.Members(ctx, "friends")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Self {
				self = m.Via
			} else {
				other, online = m.Via, m.Online
			}
		}
		return self, other, online
	}
	eventually(t, 20*time.Second, "bob online", func() bool { _, _, online := via(); return online })
	if self, other, _ := via(); self != "" || other != "direct" {
		t.Errorf("alice's members: via %q for herself, %q for bob; want \"\" and \"direct\"", self, other)
	}
	cs, err := alice.Contacts(ctx)
	if err != nil || len(cs) != 1 {
		t.Fatalf("alice's contacts: %v, %v", cs, err)
	}
	if got, want := cs[0].Via, "direct"; !cs[0].Online || got != want {
		t.Errorf("alice's contact bob: online %v via %q, want online via %q", cs[0].Online, got, want)
	}

	bob.Close()
	eventually(t, 20*time.Second, "bob offline", func() bool { _, _, online := via(); return !online })
	if _, other, _ := via(); other != "" {
		t.Errorf("alice's members: via %q for bob offline, want \"\"", other)
	}
}
