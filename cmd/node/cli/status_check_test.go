package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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

// TestStatusSaysWhichMembershipChangesWaitToBeCommitted: an invite or a
// removal that no epoch shows yet is named under the groups, with how
// long ago it was asked for (none for one asked before the daemon
// started), and so is another member's proposal, with who made it; all
// are in the JSON report.
func TestStatusSaysWhichMembershipChangesWaitToBeCommitted(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("group", "create", "family")
	asked := time.Now().Add(-3 * time.Minute)
	if err := d.b.Wait("friends", api.Change{Change: "add", Member: "bob", AskedAt: asked}, api.Change{Change: "remove", Member: "dave"},
		api.Change{Change: "remove", Member: "erin", By: "carol"}, api.Change{Change: "leave", Member: "frank", By: "frank"}); err != nil {
		t.Fatal(err)
	}
	r := d.run("status")
	if r.code != 0 || !strings.Contains(r.stdout, "friends: waiting to be committed: add bob (asked 3m0s ago), remove dave, remove erin (proposed by carol), frank's leave\n") {
		t.Errorf("status with changes waiting: exit %d, stdout %q", r.code, r.stdout)
	}
	if strings.Contains(r.stdout, "family: waiting") {
		t.Errorf("status names changes waiting in a group with none: %q", r.stdout)
	}
	r = d.run("status", "--json")
	var st api.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v (%q)", err, r.stdout)
	}
	for _, g := range st.Groups {
		switch want := map[string]int{"friends": 4, "family": 0}[g.Name]; {
		case len(g.Waiting) != want:
			t.Errorf("%s: %d changes waiting in the JSON report, want %d", g.Name, len(g.Waiting), want)
		case want > 0 && (g.Waiting[0].Member != "bob" || !g.Waiting[0].AskedAt.Equal(asked) || !g.Waiting[1].AskedAt.IsZero() ||
			g.Waiting[0].By != "" || g.Waiting[2].By != "carol"):
			t.Errorf("%s: waiting %+v", g.Name, g.Waiting)
		}
	}
	if strings.Contains(r.stdout, `"asked_at":"0001`) || strings.Count(r.stdout, `"by":`) != 2 {
		t.Errorf("a change asked before the start has a zero asked_at in the JSON report: %s", r.stdout)
	}
}
