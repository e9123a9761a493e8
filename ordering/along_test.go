package ordering

import "testing"

// A logs request names what its requester holds of the logs a responder
// may send. The head that called for it is older than its responder's
// state: the responder has often gone on to this member's own tip since,
// and starts its answer there. That log must be listed too, or it comes
// whole, every envelope this member holds again (13 MB of 115 in the large
// sweep's seed 2).
func TestLogsAskListsThisMembersOwnChainFromTheForkPoint(t *testing.T) {
	g := newTestGraph()
	addChain(t, g, "root", "A", 3, 1, members5) // this member's tip: A3
	addChain(t, g, "A1", "B", 2, 2, members5)   // another branch from A1
	l := &Loop{graph: g, tip: g.Get(id("A3"))}
	names := []string{"root", "A1", "A2", "A3", "B1", "B2"}
	for _, c := range []struct {
		along string
		want  map[string]bool
	}{
		// The head's tip is behind on this member's chain.
		{"A1", map[string]bool{"A1": true, "A2": true, "A3": true}},
		// It is on another branch: both chains from the fork point.
		{"B2", map[string]bool{"A1": true, "A2": true, "A3": true, "B1": true, "B2": true}},
	} {
		keep := l.alongTip(g.Get(id(c.along)))
		for i, name := range names {
			if got := keep(i, g.Get(id(name))); got != c.want[name] {
				t.Errorf("along %s: %s listed %v, want %v", c.along, name, got, c.want[name])
			}
		}
	}
}
