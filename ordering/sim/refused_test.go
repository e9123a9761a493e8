package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestMembersWhoRefuseWhatOthersHoldStopAsking: m4 sends a text while it
// and m1 are cut off from the rest, and m0 removes m4 on the other side.
// After the heal m1 holds the text (it took it in before it saw the
// removal) and m0, m2 and m3 refuse it (the removal came first). Then
// twenty epochs with messages push that epoch below what heads list one
// by one. The two kinds of member differ there for good, and neither
// has anything the other would take: compared by what each holds, they
// asked each other for it, and back, every SyncTimeout for as long as the
// group lived. Compared by what each has seen (held or refused), a
// quiet group makes no catch-up requests.
func TestMembersWhoRefuseWhatOthersHoldStopAsking(t *testing.T) {
	s := quietGroup(t, 11, 5)
	s.advance(5 * time.Second)
	m0, m1, m4 := s.byName["m0"], s.byName["m1"], s.byName["m4"]
	m1.side, m4.side = 1, 1
	s.sendBody(m4, 1, []byte("sent as m0 removes me"))
	s.advance(2 * time.Second)
	s.handle(m0, ordering.RemoveMember{Identity: "m4"})
	s.advance(5 * time.Second)
	m4.offline = true
	m1.side, m4.side = 0, 0
	s.advance(20 * time.Second)
	if slices.Contains(m0.loop.Tip().Members, "m4") {
		t.Fatalf("m4 was not removed (m0 on epoch %d)", m0.loop.Tip().Number)
	}
	// m1 took the text in; m0 did not.
	text := func(n *node) int {
		got := 0
		for id, k := range n.delivered {
			if s.sent[id].from == "m4" {
				got += k
			}
		}
		return got
	}
	if text(m1) != 1 || text(m0) != 0 {
		t.Fatalf("m4's text delivered %d times at m1 and %d at m0, want 1 and 0: the scenario did not split the group", text(m1), text(m0))
	}
	// Nor does m0 count the text as missing: it has seen it.
	for _, n := range s.nodes[:4] {
		if m := n.loop.Missing(); !m.OK() {
			t.Errorf("%s says it misses %+v", n.name, m)
		}
	}
	for i := range 20 {
		s.send(s.nodes[i%4])
		s.advance(time.Second)
		s.handle(m0, ordering.UpdateKeys{})
		s.advance(3 * time.Second)
	}
	s.advance(30 * time.Second)
	for _, n := range s.nodes[:4] {
		if n.loop.Tip().ID != m0.loop.Tip().ID {
			t.Fatalf("%s is on epoch %d, m0 on %d", n.name, n.loop.Tip().Number, m0.loop.Tip().Number)
		}
	}
	requests := func() int {
		total := 0
		for _, n := range s.nodes[:4] {
			total += n.loop.Stats().Sync.Requests
		}
		return total
	}
	before := requests()
	s.advance(5 * time.Minute)
	if got := requests() - before; got > 0 {
		t.Errorf("a quiet group of four made %d catch-up requests in 5 minutes", got)
	}
}

// TestMembersWhoNeverSawWhatOthersRefusedStopAsking: as above, m4 sends a
// text while it and m1 are cut off, and m0 removes m4; m0 and m3 refuse
// the text after the heal. m2 is offline all that while, and m1 is removed
// before m2 comes back. Here the members that refused the text keep none
// of it (MaxRefusedKept < 0): nobody left holds it to send, so m2 never
// sees it, and its digest of that epoch differs for good from m0's and
// m3's. Once the epoch is deeper than heads list one by one, each request
// between them made the other ask back, and that one the first, for as
// long as the group lived: in the large sweep's seed 3 (100 members) this
// was 27,000 requests in 50 s. An ask back that brought nothing is not
// made again while nothing changes.
func TestMembersWhoNeverSawWhatOthersRefusedStopAsking(t *testing.T) {
	s, live := neverSawWhatOthersRefused(t, -1)
	m2 := s.byName["m2"]
	for id := range m2.delivered {
		if s.sent[id].from == "m4" {
			t.Fatal("m2 got m4's text: nothing differs for good")
		}
	}
	got := quietRequests(s, live)
	t.Logf("catch-up requests in 5 quiet minutes: %d", got)
	if got > 6 {
		t.Errorf("a quiet group of three made %d catch-up requests in 5 minutes", got)
	}
}

// TestMembersWhoNeverSawWhatOthersRefusedGetIt: the same group, with the
// refusing members keeping what they refused (the default): m2, which
// never saw m4's text, gets it from them when it comes back. It catches
// up from the epoch before m4's removal, so it takes the text in there, as
// m1 did, and delivers it once; the three live members' digests agree and
// a quiet group asks nothing. (With nothing kept, m2 never saw the text;
// see the test above.)
func TestMembersWhoNeverSawWhatOthersRefusedGetIt(t *testing.T) {
	s, live := neverSawWhatOthersRefused(t, 0)
	m2 := s.byName["m2"]
	got := 0
	for id, k := range m2.delivered {
		if s.sent[id].from == "m4" {
			got += k
		}
	}
	if got != 1 {
		t.Fatalf("m2 delivered m4's text %d times, want once", got)
	}
	for _, n := range live {
		if m := n.loop.Missing(); !m.OK() {
			t.Errorf("%s says it misses %+v", n.name, m)
		}
	}
	if got := quietRequests(s, live); got > 0 {
		t.Errorf("a quiet group of three made %d catch-up requests in 5 minutes", got)
	}
}

// neverSawWhatOthersRefused builds the group of the two tests above, with
// Config.MaxRefusedKept keep, and returns it after twenty epochs with
// messages, with its three live members on one epoch.
func neverSawWhatOthersRefused(t *testing.T, keep int) (*Sim, []*node) {
	t.Helper()
	s := quietGroup(t, 11, 5, func(c *Config) { c.Ordering.MaxRefusedKept = keep })
	s.advance(5 * time.Second)
	m0, m1, m2, m4 := s.byName["m0"], s.byName["m1"], s.byName["m2"], s.byName["m4"]
	m2.offline = true
	m1.side, m4.side = 1, 1
	s.sendBody(m4, 1, []byte("sent as m0 removes me"))
	s.advance(2 * time.Second)
	s.handle(m0, ordering.RemoveMember{Identity: "m4"})
	s.advance(5 * time.Second)
	m4.offline = true
	m1.side, m4.side = 0, 0
	s.advance(20 * time.Second)
	s.handle(m0, ordering.RemoveMember{Identity: "m1"})
	s.advance(10 * time.Second)
	m1.offline = true
	m2.offline = false
	s.advance(20 * time.Second)
	live := []*node{m0, m2, s.byName["m3"]}
	for _, n := range live {
		if n.loop.Tip().ID != m0.loop.Tip().ID || slices.Contains(m0.loop.Tip().Members, "m1") {
			t.Fatalf("%s is on epoch %d, m0 on %d (members %v)", n.name, n.loop.Tip().Number, m0.loop.Tip().Number, m0.loop.Tip().Members)
		}
	}
	// m0 saw the text and refused it.
	for id := range m0.delivered {
		if s.sent[id].from == "m4" {
			t.Fatal("m0 delivered m4's text: the scenario did not split the group")
		}
	}
	for i := range 20 {
		s.send(live[i%3])
		s.advance(time.Second)
		s.handle(m0, ordering.UpdateKeys{})
		s.advance(3 * time.Second)
	}
	s.advance(30 * time.Second)
	for _, n := range live {
		if n.loop.Tip().ID != m0.loop.Tip().ID {
			t.Fatalf("%s is on epoch %d, m0 on %d", n.name, n.loop.Tip().Number, m0.loop.Tip().Number)
		}
	}
	return s, live
}

// quietRequests returns the catch-up requests members made in 5 minutes
// with nothing sent.
func quietRequests(s *Sim, members []*node) int {
	requests := func() int {
		total := 0
		for _, n := range members {
			total += n.loop.Stats().Sync.Requests
		}
		return total
	}
	before := requests()
	s.advance(5 * time.Minute)
	return requests() - before
}
