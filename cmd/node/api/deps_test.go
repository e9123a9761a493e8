package api

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAPIImportsOnlyTheStandardLibrary keeps the API a thin transport:
// a program that drives a node links it without MLS, libp2p or badger,
// and the node's internals cannot leak into the protocol.
func TestAPIImportsOnlyTheStandardLibrary(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".", "./apitest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "github.com/parley-p2p/parley/cmd/node/api" && dep != "github.com/parley-p2p/parley/cmd/node/api/apitest" {
			t.Errorf("package api depends on %s", dep)
		}
	}
}
