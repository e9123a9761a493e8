package node

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/ordering"
)

// openRetainingNode opens a test node whose groups keep retention epochs.
func openRetainingNode(t *testing.T, dir string, retention int, listen ...string) *Node {
	t.Helper()
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0"}
	}
	n, err := Open(context.Background(), Config{
		Dir: dir, Listen: listen, TickInterval: 50 * time.Millisecond, UpdateInterval: -1,
		Ordering: ordering.Config{Retention: retention},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// eventCounts counts, per message id, the message and final events a
// node's subscriber sees, with the epochs of the final ones.
type eventCounts struct {
	mu       sync.Mutex
	messages map[string]int
	finals   map[string][]uint64
}

func countEvents(t *testing.T, n *Node) *eventCounts {
	t.Helper()
	events, err := n.Subscribe(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	c := &eventCounts{messages: map[string]int{}, finals: map[string][]uint64{}}
	go func() {
		for ev := range events {
			if ev.Message == nil {
				continue
			}
			c.mu.Lock()
			switch ev.Type {
			case api.EventMessage:
				c.messages[ev.Message.ID]++
			case api.EventFinal:
				c.finals[ev.Message.ID] = append(c.finals[ev.Message.ID], ev.Message.Epoch)
			}
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *eventCounts) of(id string) (messages int, finals []uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.messages[id], append([]uint64(nil), c.finals[id]...)
}

// TestAMessageSentJustBeforeALongAbsenceIsShownOnce: alice sends a text
// and is closed at once, before its epoch is deep enough to leave her
// outbox; bob and carol, who got it, make three times their retention in
// epochs, so that they forget its id. alice, opened again, rejoins by
// external commit and sends her outbox again, that text among them: bob
// and carol must not show it a second time, nor move its final epoch;
// carol restarted in between, 2 epochs after alice left.
func TestAMessageSentJustBeforeALongAbsenceIsShownOnce(t *testing.T) {
	const retention = 4
	ctx := context.Background()
	var nodes []*Node
	var dirs []string
	for _, name := range []string{"alice", "bob", "carol"} {
		dir := t.TempDir()
		if _, err := Init(dir, name, nil, nil); err != nil {
			t.Fatal(err)
		}
		nodes, dirs = append(nodes, openRetainingNode(t, dir, retention)), append(dirs, dir)
	}
	alice, bob, carol := nodes[0], nodes[1], nodes[2]
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	befriend(t, bob, carol)
	if _, err := alice.CreateGroup(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol"} {
		if err := alice.Invite(ctx, "g", who); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		eventually(t, 30*time.Second, "3 members", func() bool { return groupOf(t, n, "g").Members == 3 })
	}
	counts := []*eventCounts{countEvents(t, bob), countEvents(t, carol)}
	id, err := alice.Send(ctx, "g", "last word before the flight")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{bob, carol} {
		eventually(t, 20*time.Second, "the last word at bob and carol", func() bool { return len(texts(t, n, "g")) == 1 })
	}
	aliceAddrs := listenAddrs(alice)
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	left := groupOf(t, bob, "g").Epoch
	for i := range 3 * retention {
		want := left + uint64(i) + 1
		if err := []*Node{bob, carol}[i%2].UpdateKeys(ctx, "g"); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "the next epoch at bob and carol", func() bool {
			return groupOf(t, bob, "g").Epoch >= want && groupOf(t, carol, "g").Epoch >= want
		})
		if i == 1 {
			// carol restarts long before she forgets the last word's id:
			// what tells her its copy later is what she saved.
			if got, _ := counts[1].of(id); got != 1 {
				t.Fatalf("carol showed the last word %d times before her restart", got)
			}
			carolAddrs := listenAddrs(carol)
			if err := carol.Close(); err != nil {
				t.Fatal(err)
			}
			carol = openRetainingNode(t, dirs[2], retention, carolAddrs...)
			eventually(t, 30*time.Second, "carol back on bob's epoch", func() bool {
				return groupOf(t, carol, "g").Epoch >= want
			})
			counts[1] = countEvents(t, carol)
		}
	}
	for i, n := range []*Node{bob, carol} {
		if got, _ := counts[i].of(id); got != 1-i {
			t.Fatalf("%s showed the last word %d times before alice came back (since her restart, for carol)", n.id.Name, got)
		}
	}
	_, finalBefore := counts[0].of(id)
	alice = openRetainingNode(t, dirs[0], retention, aliceAddrs...)
	eventually(t, 60*time.Second, "alice back on bob's epoch", func() bool {
		return groupOf(t, alice, "g").Epoch >= groupOf(t, bob, "g").Epoch && groupOf(t, alice, "g").Members == 3
	})
	if _, err := alice.Send(ctx, "g", "landed"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*Node{bob, carol} {
		eventually(t, 30*time.Second, "alice's next text at bob and carol", func() bool { return len(texts(t, n, "g")) == 2 })
	}
	// The copy alice re-sent went out before "landed"; give it time.
	time.Sleep(2 * time.Second)
	for i, n := range []*Node{bob, carol} {
		shown, finals := counts[i].of(id)
		if shown != 1-i {
			t.Errorf("%s showed the last word %d more times", n.id.Name, shown-(1-i))
		}
		if i == 0 && len(finals) != len(finalBefore) {
			t.Errorf("bob's final events for the last word: %v after alice came back, %v before", finals, finalBefore)
		}
		if got := texts(t, n, "g"); len(got) != 2 {
			t.Errorf("%s's history: %q", n.id.Name, got)
		}
	}
	if st := loopStats(t, alice, "g"); st.Rejoin == 0 || st.Resent == 0 {
		t.Errorf("alice rejoined %d times and re-sent %d messages: the case is not exercised", st.Rejoin, st.Resent)
	}
	for _, n := range []*Node{bob, carol} {
		if st := loopStats(t, n, "g"); st.ForgottenCopies == 0 {
			t.Errorf("%s took in no copy of a message whose id it forgot: the case is not exercised", n.id.Name)
		}
	}
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		t.Logf("epochs: alice left at %d, bob at %d", left, groupOf(t, bob, "g").Epoch)
	}
}

// loopStats returns the ordering statistics of a node's group.
func loopStats(t *testing.T, n *Node, name string) ordering.Stats {
	t.Helper()
	g, err := n.findGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	var st ordering.Stats
	if err := g.do(context.Background(), func() error { st = g.loop.Stats(); return nil }); err != nil {
		t.Fatal(err)
	}
	return st
}
