package p2p

import (
	"os/exec"
	"strings"
	"testing"
)

// TestP2PImportsNoProjectLayerAbove keeps p2p at the bottom: it knows bytes,
// peer IDs and topics, never MLS, storage, ordering or the CLI.
func TestP2PImportsNoProjectLayerAbove(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/parley-p2p/parley/mls",
		"github.com/parley-p2p/parley/store",
		"github.com/parley-p2p/parley/ordering",
		"github.com/parley-p2p/parley/cmd",
		"github.com/dgraph-io/badger",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("p2p depends on %s", dep)
			}
		}
	}
}
