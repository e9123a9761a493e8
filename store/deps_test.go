package store

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStoreImportsNoProtocolOrNetworkPackage keeps store/ a leaf: consumers
// define the interfaces it satisfies, so it must not import them, nor the
// network stack.
func TestStoreImportsNoProtocolOrNetworkPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	const module = "github.com/parley-p2p/parley/"
	forbidden := []string{module + "mls", module + "p2p", module + "ordering", module + "cmd", "github.com/libp2p/"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("store depends on %s", dep)
			}
		}
	}
}
