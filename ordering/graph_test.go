package ordering

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func id(s string) EpochID {
	var e EpochID
	copy(e[:], s)
	return e
}

// chain builds nodes under parent named prefix1, prefix2, ...
func addChain(t *testing.T, g *Graph, parent string, prefix string, n int, commitByte byte, members []string) {
	t.Helper()
	p := g.Get(id(parent))
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("%s%d", prefix, i)
		node := &Node{ID: id(name), Parent: p.ID, Number: p.Number + 1, Members: members}
		node.CommitHash[0] = commitByte
		if !g.Add(node) {
			t.Fatalf("adding %s", name)
		}
		p = node
	}
}

var members5 = []string{"a", "b", "c", "d", "e"}

func newTestGraph() *Graph {
	return NewGraph(&Node{ID: id("root"), Number: 10, Members: members5})
}

func TestForkChoicePrefersMoreEndorsers(t *testing.T) {
	g := newTestGraph()
	addChain(t, g, "root", "A", 1, 2, members5)
	addChain(t, g, "root", "B", 3, 1, members5) // deeper, lower hash
	g.Vote("a", Vote{1, id("A1")})
	g.Vote("b", Vote{1, id("A1")})
	g.Vote("c", Vote{1, id("B3")})
	if got := g.Canonical().ID; got != id("A1") {
		t.Errorf("canonical %v, want A1 (two endorsers against one)", got)
	}
}

func TestForkChoiceTieBreaksByDepthThenHash(t *testing.T) {
	g := newTestGraph()
	addChain(t, g, "root", "A", 1, 1, members5)
	addChain(t, g, "root", "B", 2, 2, members5)
	if got := g.Canonical().ID; got != id("B2") {
		t.Errorf("canonical %v, want the deeper B2", got)
	}
	g2 := newTestGraph()
	addChain(t, g2, "root", "A", 2, 9, members5)
	addChain(t, g2, "root", "B", 2, 3, members5)
	if got := g2.Canonical().ID; got != id("B2") {
		t.Errorf("canonical %v, want B2 (lower commit hash)", got)
	}
}

func TestOnlyLatestVotePerMemberCounts(t *testing.T) {
	g := newTestGraph()
	addChain(t, g, "root", "A", 1, 1, members5)
	addChain(t, g, "root", "B", 1, 2, members5)
	g.Vote("a", Vote{1, id("B1")})
	g.Vote("b", Vote{1, id("B1")})
	g.Vote("a", Vote{2, id("A1")}) // a moved to A
	if g.Vote("a", Vote{1, id("B1")}) {
		t.Error("an older vote replaced a newer one")
	}
	// A: a; B: b. Tie on votes and depth: A has the lower hash.
	if got := g.Canonical().ID; got != id("A1") {
		t.Errorf("canonical %v, want A1", got)
	}
}

func TestVotesOfMembersAddedOnABranchDoNotCountAtEarlierForks(t *testing.T) {
	g := newTestGraph()
	withNew := append(append([]string{}, members5...), "x", "y", "z")
	addChain(t, g, "root", "A", 1, 1, withNew) // A adds x, y, z
	addChain(t, g, "root", "B", 1, 2, members5)
	for _, m := range []string{"x", "y", "z", "a"} {
		g.Vote(m, Vote{1, id("A1")})
	}
	g.Vote("b", Vote{1, id("B1")})
	g.Vote("c", Vote{1, id("B1")})
	if got := g.Canonical().ID; got != id("B1") {
		t.Errorf("canonical %v, want B1: x, y, z were not members at the fork", got)
	}
}

// The canonical tip depends only on the set of nodes and votes, not on the
// order they arrive in.
func TestForkChoiceIgnoresArrivalOrder(t *testing.T) {
	type op struct {
		node *Node
		who  string
		vote Vote
	}
	build := func() []op {
		var ops []op
		add := func(name, parent string, num uint64, h byte) {
			n := &Node{ID: id(name), Parent: id(parent), Number: num, Members: members5}
			n.CommitHash[0] = h
			ops = append(ops, op{node: n})
		}
		add("A1", "root", 11, 5)
		add("A2", "A1", 12, 1)
		add("B1", "root", 11, 3)
		add("C1", "A1", 12, 4)
		add("C2", "C1", 13, 9)
		for i, v := range []struct {
			who string
			tip string
		}{{"a", "A2"}, {"b", "C2"}, {"c", "B1"}, {"d", "C1"}, {"e", "A2"}, {"a", "C2"}} {
			ops = append(ops, op{who: v.who, vote: Vote{uint64(i + 1), id(v.tip)}})
		}
		return ops
	}
	var want EpochID
	for seed := range 200 {
		ops := build()
		r := rand.New(rand.NewPCG(uint64(seed), 1))
		r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
		g := newTestGraph()
		var pending []*Node
		for _, o := range ops {
			if o.node != nil {
				pending = append(pending, o.node)
			} else {
				g.Vote(o.who, o.vote)
			}
			// Insert whatever has its parent.
			for progress := true; progress; {
				progress = false
				for i := 0; i < len(pending); i++ {
					if g.Get(pending[i].Parent) != nil && g.Add(pending[i]) {
						pending = append(pending[:i], pending[i+1:]...)
						progress = true
						i--
					}
				}
			}
		}
		got := g.Canonical().ID
		if seed == 0 {
			want = got
		} else if got != want {
			t.Fatalf("seed %d: canonical %v, seed 0 gave %v", seed, got, want)
		}
	}
	if want != id("C2") {
		t.Errorf("canonical %v, want C2 (a, b, d on the C branch)", want)
	}
}

func TestQuorumFinalityAndPrune(t *testing.T) {
	g := newTestGraph()
	addChain(t, g, "root", "A", 3, 1, members5)
	addChain(t, g, "A1", "B", 1, 2, members5)
	a2 := g.Get(id("A2"))
	g.Vote("a", Vote{1, id("A3")})
	g.Vote("b", Vote{1, id("A2")})
	if g.QuorumFinal(a2) {
		t.Error("A2 final with 2 of 5 votes")
	}
	g.Vote("c", Vote{1, id("A3")})
	if !g.QuorumFinal(a2) {
		t.Error("A2 not final with 3 of 5 votes")
	}
	dropped := g.Prune(a2)
	if g.Root() != a2 || g.Get(id("B1")) != nil || g.Get(id("A1")) != nil || len(dropped) != 3 {
		t.Errorf("prune: root %v, dropped %d", g.Root().ID, len(dropped))
	}
	if g.Canonical().ID != id("A3") {
		t.Errorf("canonical after prune %v", g.Canonical().ID)
	}
}

// bruteEndorse counts, by the definition, the voters of n whose latest
// vote counts in n's subtree: at its tip if the graph holds it, otherwise
// where it was placed.
func bruteEndorse(g *Graph, n *Node) int {
	count := 0
	for m, v := range g.votes {
		at := v.Tip
		if _, known := g.nodes[at]; !known {
			at = g.placed[m]
		}
		if n.voters().hasMember(m) && g.inSubtree(at, n) {
			count++
		}
	}
	return count
}

// The tallies the graph keeps by one walk per vote equal the counts by the
// definition after any sequence of adds, votes (for known and unknown
// epochs), placements and prunes; and committerRank equals the place in
// the sorted order.
func TestTalliesMatchTheDefinition(t *testing.T) {
	all := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 1))
		subset := func() []string {
			var ms []string
			for _, m := range all {
				if r.IntN(4) > 0 {
					ms = append(ms, m)
				}
			}
			return ms
		}
		g := NewGraph(&Node{ID: id("n0"), Number: 0, Members: subset()})
		var ids []EpochID // every id ever made, some never added
		ids = append(ids, id("n0"))
		var unadded []*Node
		seq := uint64(0)
		for step := range 200 {
			switch k := r.IntN(10); {
			case k < 3: // a new node under a random known node, added now or later
				var p *Node
				for _, n := range g.nodes {
					if p == nil || r.IntN(3) == 0 {
						p = n
					}
				}
				n := &Node{ID: id(fmt.Sprintf("n%d", step+1)), Parent: p.ID, Number: p.Number + 1, Members: subset()}
				ids = append(ids, n.ID)
				if r.IntN(3) == 0 {
					unadded = append(unadded, n)
				} else {
					g.Add(n)
				}
			case k < 4 && len(unadded) > 0:
				i := r.IntN(len(unadded))
				g.Add(unadded[i])
				unadded = append(unadded[:i], unadded[i+1:]...)
			case k < 8:
				seq++
				g.Vote(all[r.IntN(len(all))], Vote{Seq: seq, Tip: ids[r.IntN(len(ids))]})
			case k < 9:
				g.Place(all[r.IntN(len(all))], ids[r.IntN(len(ids))])
			default:
				var n *Node
				for _, c := range g.nodes {
					if n == nil || (c.Number <= g.root.Number+2 && r.IntN(2) == 0) {
						n = c
					}
				}
				g.Prune(n)
				if r.IntN(2) == 0 {
					for _, m := range g.ForgetNonVoters() {
						for _, n := range g.nodes {
							if n.hasMember(m) {
								t.Fatalf("seed %d: forgot %s, a member of epoch %d", seed, m, n.Number)
							}
						}
					}
				}
			}
			for _, n := range g.nodes {
				if want := bruteEndorse(g, n); n.endorse != want {
					t.Fatalf("seed %d step %d: node %d endorse %d, want %d", seed, step, n.Number, n.endorse, want)
				}
			}
		}
		for _, n := range g.nodes {
			for _, self := range all {
				sorted := slices.Clone(n.Members)
				h := func(m string) []byte { s := sha256.Sum256(append(n.ID[:], m...)); return s[:] }
				slices.SortFunc(sorted, func(a, b string) int { return bytes.Compare(h(a), h(b)) })
				want := slices.Index(sorted, self)
				if want < 0 {
					want = len(sorted)
				}
				if got := committerRank(n, self); got != want {
					t.Fatalf("seed %d: committerRank(%s) = %d, want %d", seed, self, got, want)
				}
			}
		}
	}
}

// A member asked for its heads sends only those newer than the ones the
// requester lists, and all of them to a requester that lists none.
func TestHeldHeadsSkipsWhatTheRequesterHolds(t *testing.T) {
	l := &Loop{graph: newTestGraph(), heads: map[string][]byte{}}
	for i, m := range members5 {
		l.graph.Vote(m, Vote{Seq: uint64(10 + i), Tip: id("root")})
		l.heads[m] = []byte(m)
	}
	theirs := []heldVote{
		{identityHash("a"), 10}, // the same head: skipped
		{identityHash("b"), 99}, // newer there: skipped
		{identityHash("c"), 1},  // older there: sent
		// d and e not held there: sent
	}
	got := l.heldHeads(theirs)
	want := [][]byte{[]byte("c"), []byte("d"), []byte("e")}
	if !slices.EqualFunc(got, want, bytes.Equal) {
		t.Errorf("heldHeads = %q, want %q", got, want)
	}
	if got := l.heldHeads(nil); len(got) != 5 {
		t.Errorf("heldHeads(nil) = %d heads, want 5", len(got))
	}
	// Round trip through the request encoding.
	req := &syncRequest{groupID: []byte("g"), wantVotes: true, held: l.heldVotes(), signatureKey: []byte("k")}
	back, err := decodeSyncRequest(req.encode())
	if err != nil || len(back.held) != 5 || len(l.heldHeads(back.held)) != 0 {
		t.Fatalf("decoded request %v, %v: want the 5 held votes, answered with no head", back, err)
	}
}
