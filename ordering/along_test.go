package ordering

import (
	"errors"
	"testing"
	"time"
)

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

// A member asks for one unknown tip at a time. Heads from the other side
// of a healed partition name different tips of the same branch (each
// member's own), and two requests for two of them came back with the same
// commits and logs: in the large sweep's seed 9 with the leave-out on,
// answers for unknown tips brought 25.5 MB of envelopes their requester
// held already. Another tip is asked for once the answer came, or the
// request timed out.
func TestOneUnknownTipIsAskedForAtATime(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	_, l, _ := newAlone(t, "one-tip", now)
	l.tip.Members = append(l.tip.Members, "bob", "carol")
	l.begin(now)
	l.askFor("bob", &Head{Epoch: l.tip.Number + 2, Tip: id("bob's tip")})
	l.askFor("carol", &Head{Epoch: l.tip.Number + 3, Tip: id("carol's tip")})
	out := l.finish()
	if len(out.Requests) != 1 || out.Requests[0].To != "bob" {
		var to []string
		for _, r := range out.Requests {
			to = append(to, r.To)
		}
		t.Fatalf("requests to %v, want one, to bob", to)
	}
	// Once bob's answer came (here: failed), carol's tip is asked for.
	l.begin(now.Add(time.Second))
	l.syncResponse(out.Requests[0].ID, nil, errors.New("stream reset"))
	l.askFor("carol", &Head{Epoch: l.tip.Number + 3, Tip: id("carol's tip")})
	if out := l.finish(); len(out.Requests) != 1 || out.Requests[0].To != "carol" {
		t.Fatalf("%d requests after bob's answer, want one to carol", len(out.Requests))
	}
}
