package ordering

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOrderingIsPureLogic keeps ordering free of I/O layers: it depends on
// mls and the standard library only (and x/crypto through mls), never on
// p2p, store, the CLI, libp2p or badger; time and randomness come in from
// the caller.
func TestOrderingIsPureLogic(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/parley-p2p/parley/p2p",
		"github.com/parley-p2p/parley/store",
		"github.com/parley-p2p/parley/cmd",
		"github.com/libp2p/",
		"github.com/dgraph-io/badger",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
				t.Errorf("ordering depends on %s", dep)
			}
		}
	}
	// No I/O of its own either.
	direct, err := exec.Command(goBin, "list", "-f", "{{join .Imports \"\\n\"}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, direct)
	}
	for _, imp := range strings.Fields(string(direct)) {
		if imp == "os" || imp == "net" || strings.HasPrefix(imp, "net/") || imp == "io/ioutil" {
			t.Errorf("ordering imports %s", imp)
		}
	}
}
