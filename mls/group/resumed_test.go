package group

import (
	"bytes"
	"testing"

	"github.com/parley-p2p/parley/mls/wire"
)

// ResumedGroupOptions.ForcePath gives the first commit of a branched or
// reinitialized group an UpdatePath, and the joiners get a path secret.
func TestResumedGroupFirstCommitHasPathOnlyWhenForced(t *testing.T) {
	for _, force := range []bool{false, true} {
		f := newFixture(t, fixtureOptions{})
		carol := newTestBundle(t, f.cfg, "carol", nil)
		_, sc, err := f.members[0].Branch(newTestBundle(t, f.cfg, "alice", nil), ResumedGroupOptions{
			GroupID: []byte("side"), KeyPackages: []*wire.KeyPackage{carol.KeyPackage}, WelcomeWithTree: true, ForcePath: force,
		})
		if err != nil {
			t.Fatal(err)
		}
		if sc.HasPath != force {
			t.Errorf("ForcePath %v: commit has path %v", force, sc.HasPath)
		}
		joined, err := JoinWelcome(f.cfg, sc.Welcome, carol, JoinOptions{Resumed: f.members[2]})
		if err != nil {
			t.Fatalf("ForcePath %v: joining: %v", force, err)
		}
		if !bytes.Equal(joined.EpochAuthenticator(), sc.State.EpochAuthenticator()) {
			t.Errorf("ForcePath %v: joiner disagrees", force)
		}
	}
}
