package ordering

import (
	"bytes"
	"sort"
)

// Node is one epoch in a member's view of the group's history.
type Node struct {
	ID     EpochID
	Parent EpochID
	Number uint64
	// CommitHash is the hash of the commit that created the epoch; the
	// last tie-break of the fork choice.
	CommitHash [32]byte
	// Members are the identities of the epoch's members, sorted; they are
	// the voters at a fork whose fork point is this epoch.
	Members []string
	// Committer is the identity of the member whose commit made the
	// epoch, where known (not persisted).
	Committer string
	// RemovedBy maps each member the epoch's commit removed to the member
	// who asked: the sender of the Remove (or of the SelfRemove: the
	// member itself, which left), where known (not persisted).
	RemovedBy map[string]string
	// AddedBy maps each member the epoch's commit added to the member who
	// asked: the sender of the Add, where known (not persisted).
	AddedBy map[string]string

	parent   *Node
	children []*Node
	// endorse is the number of voters of the node (see voters) whose
	// latest vote counts in its subtree; the graph keeps it up to date.
	endorse int
	// rank is the owner's committerRank plus one, once computed.
	rank int
}

// voters returns the node whose members vote at the fork n belongs to: its
// parent, or n itself for the root.
func (n *Node) voters() *Node {
	if n.parent != nil {
		return n.parent
	}
	return n
}

// Children returns the node's children.
func (n *Node) Children() []*Node { return n.children }

func (n *Node) hasMember(id string) bool {
	i := sort.SearchStrings(n.Members, id)
	return i < len(n.Members) && n.Members[i] == id
}

// Vote is a member's latest head: the epoch it was on, with the counter
// that orders its heads.
type Vote struct {
	Seq uint64
	Tip EpochID
}

// Graph is the tree of epochs descending from the last pruned-to root.
//
// The fork choice is LMD-GHOST ("latest message driven greedy heaviest
// observed subtree"), the rule of DESIGN.md made precise: starting at the
// root, at each fork it follows the child whose subtree holds the most
// latest votes of members of the fork-point epoch (a vote counts for a
// branch only if it was made on an epoch after the fork, so only
// endorsements after the fork point count, and each member counts once,
// with its newest head); ties go to the deeper subtree, then to the lower
// hash of the child's commit. The result is a function of the set of
// nodes and votes seen, never of arrival order or timestamps, and members
// added on one branch have no say at forks before they joined.
type Graph struct {
	root  *Node
	nodes map[EpochID]*Node
	votes map[string]Vote
	// placed holds, for a member whose latest vote is for an epoch not in
	// the graph, the node its vote is known to lie under: a member that
	// refused this one as removed votes under the opaque node of the
	// removing commit.
	placed map[string]EpochID
	// counted is the node each member's latest vote is counted at (absent
	// while it counts nowhere); waiting lists, by epoch id, the members
	// whose vote would count once that epoch arrives. With them the tallies
	// (Node.endorse) change by one walk to the root per vote, instead of
	// a pass over all votes at every fork on every fork choice, which cost
	// a 1,000-member group a billion steps per epoch.
	counted map[string]*Node
	waiting map[EpochID]map[string]struct{}
}

// NewGraph returns a graph with a single root epoch.
func NewGraph(root *Node) *Graph {
	root.parent, root.children, root.endorse = nil, nil, 0
	return &Graph{
		root: root, nodes: map[EpochID]*Node{root.ID: root},
		votes: map[string]Vote{}, placed: map[string]EpochID{},
		counted: map[string]*Node{}, waiting: map[EpochID]map[string]struct{}{},
	}
}

// Root returns the root.
func (g *Graph) Root() *Node { return g.root }

// Get returns the node with the id.
func (g *Graph) Get(id EpochID) *Node { return g.nodes[id] }

// Len returns the number of nodes.
func (g *Graph) Len() int { return len(g.nodes) }

// Add inserts a node under its parent. It reports false if the node is
// already known or its parent is not.
func (g *Graph) Add(n *Node) bool {
	if _, dup := g.nodes[n.ID]; dup {
		return false
	}
	p := g.nodes[n.Parent]
	if p == nil || n.Number != p.Number+1 {
		return false
	}
	n.parent, n.children, n.endorse = p, nil, 0
	p.children = append(p.children, n)
	g.nodes[n.ID] = n
	for m := range g.waiting[n.ID] {
		g.recount(m)
	}
	delete(g.waiting, n.ID)
	return true
}

// Vote records a member's head if it is newer than the one held. Heads for
// epochs not in the graph are kept too: they count once the epoch arrives.
func (g *Graph) Vote(member string, v Vote) bool {
	if old, ok := g.votes[member]; ok && old.Seq >= v.Seq {
		return false
	}
	g.votes[member] = v
	g.recount(member)
	return true
}

// Place records that member's latest vote, while it is for an epoch not in
// the graph, lies in the subtree of node at.
func (g *Graph) Place(member string, at EpochID) {
	g.placed[member] = at
	g.recount(member)
}

// countsAt returns the node a member's latest vote counts at: its tip, or
// where it was placed if the tip is unknown; nil if neither is in the
// graph.
func (g *Graph) countsAt(member string) *Node {
	v, ok := g.votes[member]
	if !ok {
		return nil
	}
	if n := g.nodes[v.Tip]; n != nil {
		return n
	}
	if at, ok := g.placed[member]; ok {
		return g.nodes[at]
	}
	return nil
}

// recount moves a member's vote in the tallies to where it counts now, and
// notes the epochs whose arrival would move it.
func (g *Graph) recount(member string) {
	now := g.countsAt(member)
	if old := g.counted[member]; old != now {
		if old != nil {
			tally(member, old, -1)
		}
		if now != nil {
			tally(member, now, +1)
			g.counted[member] = now
		} else {
			delete(g.counted, member)
		}
	}
	v := g.votes[member]
	if _, ok := g.nodes[v.Tip]; !ok {
		g.wait(v.Tip, member)
		if at, ok := g.placed[member]; ok && g.nodes[at] == nil {
			g.wait(at, member)
		}
	}
}

// anyWaiting reports whether some vote may be for an epoch not in the
// graph (the waiting lists can hold votes since moved on: it errs towards
// yes).
func (g *Graph) anyWaiting() bool { return len(g.waiting) > 0 }

func (g *Graph) wait(id EpochID, member string) {
	w := g.waiting[id]
	if w == nil {
		w = map[string]struct{}{}
		g.waiting[id] = w
	}
	w[member] = struct{}{}
}

// tally adds delta to the count of every node from n up to the root whose
// voters include the member.
func tally(member string, n *Node, delta int) {
	for ; n != nil; n = n.parent {
		if n.voters().hasMember(member) {
			n.endorse += delta
		}
	}
}

// ForgetNonVoters drops the votes of the identities that are members of no
// epoch in the graph (removed at or before the root): they count at no
// fork left, and a long-lived group would otherwise keep one per identity
// it ever had. It returns them.
func (g *Graph) ForgetNonVoters() []string {
	gone := g.nonVoters()
	for _, m := range gone {
		delete(g.votes, m)
		delete(g.placed, m)
		delete(g.counted, m) // counted at no node: it is no node's voter
	}
	return gone
}

// nonVoters returns the identities whose vote the graph holds that are
// members of none of its epochs.
func (g *Graph) nonVoters() []string {
	voters := map[string]bool{}
	for _, n := range g.nodes {
		for _, m := range n.Members {
			voters[m] = true
		}
	}
	var out []string
	for m := range g.votes {
		if !voters[m] {
			out = append(out, m)
		}
	}
	return out
}

// Votes returns the latest vote of every member.
func (g *Graph) Votes() map[string]Vote { return g.votes }

// inSubtree reports whether epoch tip is a (or in the subtree of) node c.
func (g *Graph) inSubtree(tip EpochID, c *Node) bool {
	n := g.nodes[tip]
	for n != nil && n.Number > c.Number {
		n = n.parent
	}
	return n == c
}

// endorsers counts the members of fork point f, c's parent, whose latest
// vote is in the subtree of c.
func (g *Graph) endorsers(f, c *Node) int {
	if c.parent != f {
		panic("ordering: endorsers of a node at a fork point that is not its parent")
	}
	return c.endorse
}

// height returns the length of the longest chain below and including n.
func height(n *Node) int {
	h := 0
	for _, c := range n.children {
		h = max(h, height(c))
	}
	return h + 1
}

// better reports whether child a beats child b at fork point f.
func (g *Graph) better(f, a, b *Node) bool {
	ea, eb := g.endorsers(f, a), g.endorsers(f, b)
	if ea != eb {
		return ea > eb
	}
	ha, hb := height(a), height(b)
	if ha != hb {
		return ha > hb
	}
	return bytes.Compare(a.CommitHash[:], b.CommitHash[:]) < 0
}

// Canonical returns the tip chosen by the fork choice.
func (g *Graph) Canonical() *Node {
	n := g.root
	for len(n.children) > 0 {
		best := n.children[0]
		for _, c := range n.children[1:] {
			if g.better(n, c, best) {
				best = c
			}
		}
		n = best
	}
	return n
}

// Chain returns the path from the root to n, root first.
func (g *Graph) Chain(n *Node) []*Node {
	var out []*Node
	for ; n != nil; n = n.parent {
		out = append(out, n)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// IsAncestor reports whether a is b or an ancestor of b.
func (g *Graph) IsAncestor(a, b EpochID) bool {
	an := g.nodes[a]
	return an != nil && g.inSubtree(b, an)
}

// ForkPoint returns the latest common ancestor of a and b.
func (g *Graph) ForkPoint(a, b *Node) *Node {
	for a != nil && b != nil && a != b {
		if a.Number >= b.Number {
			a = a.parent
		} else {
			b = b.parent
		}
	}
	if a == b {
		return a
	}
	return nil
}

// QuorumFinal reports whether a strict majority of the voters at n's fork
// point (the members of n's parent, or of n itself for the root) have
// their latest vote on n or a descendant: n has won its fork, by more
// votes than any sibling can gather.
func (g *Graph) QuorumFinal(n *Node) bool {
	return 2*n.endorse > len(n.voters().Members)
}

// Prune makes n (a node of the graph) the new root and drops every node
// not descending from it. It returns the dropped nodes.
func (g *Graph) Prune(n *Node) []*Node {
	if n == g.root {
		return nil
	}
	var dropped []*Node
	for id, m := range g.nodes {
		if !g.inSubtree(id, n) {
			dropped = append(dropped, m)
			delete(g.nodes, id)
		}
	}
	n.parent = nil
	g.root = n
	// A vote counted at a dropped node counted nowhere that remains; it
	// may count again where it was placed. The root's voters are now its
	// own members, so its tally is redone; and what the waiting lists
	// wait for is redone from the votes.
	g.waiting = map[EpochID]map[string]struct{}{}
	for m, at := range g.counted {
		if g.nodes[at.ID] != at {
			delete(g.counted, m)
		}
	}
	for m := range g.votes {
		g.recount(m)
	}
	n.endorse = 0
	for m := range g.counted {
		if n.hasMember(m) {
			n.endorse++
		}
	}
	sort.Slice(dropped, func(i, j int) bool { return dropped[i].Number < dropped[j].Number })
	return dropped
}

// childToward is the child of ancestor on the path to n (n itself if it
// is one).
func childToward(n, ancestor *Node) *Node {
	for n.parent != nil && n.parent != ancestor {
		n = n.parent
	}
	return n
}
