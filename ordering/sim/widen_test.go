package sim

import (
	"testing"
	"time"

	"github.com/parley-p2p/parley/ordering"
)

// TestWidenedAsksAreProbes: a member that asks a member it did not know
// was removed is told that it is gone, and so asks the other members at
// once (widenSync). One of those requests asks for a full answer; the
// others, which would bring the same envelopes, are probes of 32 KiB, and
// it pages from whichever answers with more. They asked for 256 KiB each,
// and in the long partition at 10 members brought 0.70 MB that another
// answer brought too. It still catches up.
func TestWidenedAsksAreProbes(t *testing.T) {
	s := quietGroup(t, 29, 5)
	m0, m1, m3 := s.byName["m0"], s.byName["m1"], s.byName["m3"]
	// m3 hears m1 alone, and asks m1 for what m1's heads call for. m0
	// removes m4 and, as soon as m1 holds that epoch, removes m1: m3's
	// next request to m1 hears that m1 is gone.
	m3.only = map[string]bool{"m1": true}
	// m1 hears m3's heads first: answers to a member heard before what
	// gossip brought leave that out (serveSync), so that m3 still lacks
	// what m1's heads list, and asks.
	s.advance(time.Second)
	for range 10 {
		s.send(m0)
	}
	s.handle(m0, ordering.RemoveMember{Identity: "m4"})
	start := m3.loop.Tip().Number
	for end := s.now.Add(30 * time.Second); m1.loop.Tip().Number == start; s.advance(time.Millisecond) {
		if !s.now.Before(end) {
			t.Fatal("m0's commit never reached m1")
		}
	}
	s.handle(m0, ordering.RemoveMember{Identity: "m1"})
	waitSim(t, s, 30*time.Second, "m1 removed", func() bool { return m1.loop.Removed() })

	asked := map[string]uint32{} // responder → MaxBytes of m3's first request to it
	askedM1 := false
	s.onHandle = func(n *node, ev ordering.Event) {
		req, ok := ev.(ordering.SyncRequest)
		if !ok || req.From != "m3" {
			return
		}
		if n == m1 {
			askedM1 = true
			return
		}
		f, err := ordering.ParseSyncRequest(req.Body)
		if err != nil {
			t.Errorf("m3's request to %s does not parse: %v", n.name, err)
			return
		}
		if _, seen := asked[n.name]; !seen {
			asked[n.name] = f.MaxBytes
		}
	}
	for end := s.now.Add(30 * time.Second); !askedM1; s.advance(time.Millisecond) {
		if !s.now.Before(end) {
			t.Fatal("m3 never asked m1")
		}
	}
	m3.only = nil
	waitSim(t, s, 30*time.Second, "m3 on m0's tip", func() bool { return m3.loop.Tip().ID == m0.loop.Tip().ID })
	if len(asked) < 2 {
		t.Fatalf("m3 asked %d of the other members (%v): the scenario does not widen", len(asked), asked)
	}
	full := 0
	for name, max := range asked {
		switch {
		case max > 256<<10:
			full++
		case max > 32<<10:
			t.Errorf("m3 asked %s for %d bytes while another request was out, want a probe of at most 32 KiB", name, max)
		}
	}
	if full > 1 {
		t.Errorf("m3 asked %d members for a full answer at once (%v), want one", full, asked)
	}
	t.Logf("m3's first requests to the others, by responder: %v", asked)
}
