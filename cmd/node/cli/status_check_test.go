package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestStatusCheckExitsOneWhenAGroupNeedsAttention: status --check, for
// monitors, prints the report and exits 0 while every group is fine, 1
// (naming the groups on stderr) once one is damaged; under --json the
// report is the only document on stdout.
func TestStatusCheckExitsOneWhenAGroupNeedsAttention(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("group", "create", "family")
	if r := d.run("status", "--check"); r.code != 0 || !strings.Contains(r.stdout, "friends") {
		t.Fatalf("status --check with every group ok: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if err := d.b.Damage("family", "ordering state fails its checksum"); err != nil {
		t.Fatal(err)
	}
	r := d.run("status", "--check")
	if r.code != 1 || !strings.Contains(r.stderr, "family (damaged)") || strings.Contains(r.stderr, "friends") || !strings.Contains(r.stdout, "GROUP") {
		t.Errorf("status --check with a damaged group: exit %d, stdout %q, stderr %q; want 1, the report, and family named", r.code, r.stdout, r.stderr)
	}
	r = d.run("status", "--check", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || r.code != 1 {
		t.Fatalf("status --check --json: exit %d, stdout %q (%v); want 1 and one JSON document", r.code, r.stdout, err)
	}
	if len(st.Groups) != 2 {
		t.Errorf("status --check --json lists %d groups, want 2", len(st.Groups))
	}
	if r := d.run("status"); r.code != 0 {
		t.Errorf("status without --check exits %d with a damaged group, want 0", r.code)
	}
}
