package mls_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules keeps mls/ a pure protocol library: it must not depend on
// the network, storage, ordering or command packages of Parley, nor on
// libp2p or badger.
func TestImportRules(t *testing.T) {
	forbidden := []string{
		"github.com/parley-p2p/parley/p2p",
		"github.com/parley-p2p/parley/store",
		"github.com/parley-p2p/parley/ordering",
		"github.com/parley-p2p/parley/cmd",
		"github.com/libp2p/",
		"github.com/dgraph-io/badger",
		"log/slog", // mls returns errors; it never logs
	}
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too few packages (%d): %s", len(deps), out)
	}
	for _, dep := range deps {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
				t.Errorf("mls/... depends on %s (forbidden: %s)", dep, f)
			}
		}
	}
}
