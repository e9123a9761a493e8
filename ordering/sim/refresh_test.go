package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// leafKeyOf is member name's leaf encryption key as viewer sees it.
func leafKeyOf(t *testing.T, s *Sim, viewer, name string) []byte {
	t.Helper()
	for _, m := range s.byName[viewer].loop.State().Members() {
		if ordering.Identity(m.LeafNode) == name {
			return bytes.Clone(m.LeafNode.EncryptionKey)
		}
	}
	t.Fatalf("%s does not see %s in the group", viewer, name)
	return nil
}

// TestMemberRefreshesItsLeafAfterSoManyMessages: with UpdateAfter 40, a
// member that sends its 40th message since its last refresh commits a new
// leaf, which every member sees, and a member that sent fewer does not.
// The count survives a crash: it is saved every 16 sends and a restored
// member adds 16 (it refreshes early rather than late), so a member that
// sent 35 (32 saved) refreshes as soon as it is back, without sending;
// had the count been lost, 16 would not reach 40.
func TestMemberRefreshesItsLeafAfterSoManyMessages(t *testing.T) {
	s := quietGroup(t, 5, 3, func(cfg *Config) {
		cfg.Ordering.UpdateAfter = 40
	})
	s.advance(10 * time.Second)
	m0, m1 := s.byName["m0"], s.byName["m1"]
	send := func(n *node, k int) {
		for range k {
			s.handle(n, ordering.SendMessage{ContentType: 1, Body: []byte("hi")})
		}
		s.advance(10 * time.Second)
	}
	key0, key1 := leafKeyOf(t, s, "m2", "m0"), leafKeyOf(t, s, "m2", "m1")
	epoch := m0.loop.Tip().Number

	send(m0, 39)
	send(m1, 35)
	if got := m0.loop.Tip().Number; got != epoch {
		t.Fatalf("after 39 and 35 messages the group moved from epoch %d to %d", epoch, got)
	}
	send(m0, 1)
	if got := leafKeyOf(t, s, "m2", "m0"); bytes.Equal(got, key0) {
		t.Fatal("m0 did not refresh its leaf after its 40th message")
	}
	// m1's leaf changes only if m1 itself committed (m0's proposal, with
	// a path): never as a refresh of its own.
	if got := leafKeyOf(t, s, "m2", "m1"); !bytes.Equal(got, key1) && m0.loop.Tip().Committer != "m1" {
		t.Fatal("m1 refreshed its leaf after only 35 messages")
	}
	for _, n := range s.nodes {
		if n.loop.Tip().ID != m0.loop.Tip().ID {
			t.Fatalf("%s is on epoch %d, m0 on %d", n.name, n.loop.Tip().Number, m0.loop.Tip().Number)
		}
	}

	// m1 crashes and comes back; it sends nothing more.
	m1.up, m1.loop = false, nil
	s.advance(time.Second)
	s.restart(m1)
	s.advance(10 * time.Second)
	if got := leafKeyOf(t, s, "m2", "m1"); bytes.Equal(got, key1) {
		t.Fatal("m1 did not refresh after a restart with 35 messages sent (32 saved) and the slack of 16")
	}
}

// TestMemberRefreshesItsLeafOnSchedule: with UpdateInterval a minute and
// no traffic at all, every member's leaf is new after a few minutes.
func TestMemberRefreshesItsLeafOnSchedule(t *testing.T) {
	s := quietGroup(t, 6, 3, func(cfg *Config) {
		cfg.Ordering.UpdateInterval = time.Minute
	})
	s.advance(5 * time.Second)
	before := map[string][]byte{}
	for _, n := range s.nodes {
		before[n.name] = leafKeyOf(t, s, "m0", n.name)
	}
	s.advance(3 * time.Minute)
	for _, n := range s.nodes {
		if bytes.Equal(leafKeyOf(t, s, "m0", n.name), before[n.name]) {
			t.Errorf("%s did not refresh its leaf in three minutes", n.name)
		}
		if n.loop.Tip().ID != s.nodes[0].loop.Tip().ID {
			t.Errorf("%s is on epoch %d, m0 on %d", n.name, n.loop.Tip().Number, s.nodes[0].loop.Tip().Number)
		}
	}
}
