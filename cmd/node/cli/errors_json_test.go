package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
)

func TestJoinShowsWhyTheInviterRefused(t *testing.T) {
	d := startDaemon(t)
	d.b.Fail = func(method string) error {
		if method == api.MethodJoin {
			return fmt.Errorf("%w: the inviting member refused: unknown or used invite code", api.ErrBadCode)
		}
		return nil
	}
	d.run("join", "pi1-chess").check(t, "join with a used code", 1, "",
		`^parley join: the invite code did not work: the inviting member refused: unknown or used invite code; ask a member for a new one`)
}

func TestGlobalFlagsBeforeTheCommand(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	tests := []struct {
		args   []string
		stdout string
	}{
		{[]string{"--data", d.data, "groups"}, `(?m)^friends +[0-9a-f]{32} `},
		{[]string{"--data=" + d.data, "--json", "groups"}, `^\[\n  \{\n    "id"`},
		{[]string{"-json", "-data", d.data, "members", "friends"}, `"name": "alice"`},
		{[]string{"--data", d.data, "group", "create", "chess"}, `^created group chess `},
		{[]string{"--data", d.data, "send", "friends", "--", "--json"}, `^sent to friends`},
	}
	for _, tt := range tests {
		runParley(t.Context(), tt.args...).check(t, strings.Join(tt.args, " "), 0, tt.stdout, "")
	}
	runParley(t.Context(), "--data").check(t, "--data without a value", 1, "", `^parley: flag needs an argument: --data DIR\n$`)
	runParley(t.Context(), "--data", d.data).check(t, "no command", 1, "", `^parley: missing command after the flags`)
}

func TestErrorsAsJSONUnderJSON(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	tests := []struct {
		args []string
		code string
	}{
		{[]string{"send", "nope", "hi", "--json"}, "not_found"},
		{[]string{"--json", "group", "create", "friends"}, "exists"},
		{[]string{"join", "garbage", "--json"}, "bad_code"},
		{[]string{"members", "--json"}, "usage"},
		{[]string{"groups", "--json", "--bogus"}, "usage"},
		{[]string{"--json", "frobnicate"}, "usage"},
		{[]string{"send", "friends", "--json", "--no-wait", "hi"}, "invalid"},
	}
	for _, tt := range tests {
		what := strings.Join(tt.args, " ")
		r := d.run(tt.args...)
		if r.code != 1 {
			t.Errorf("%s: exit %d, want 1", what, r.code)
		}
		var got struct{ Error *api.Error }
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Error == nil {
			t.Errorf("%s: stdout %q is not a JSON error (%v)", what, r.stdout, err)
			continue
		}
		if got.Error.Code != tt.code || !strings.HasSuffix(r.stderr, ": "+got.Error.Message+"\n") {
			t.Errorf("%s: %+v, want code %q and the message of stderr %q", what, got.Error, tt.code, r.stderr)
		}
	}
	r := runParley(t.Context(), "status", "--json", "--data", t.TempDir())
	if r.code != 1 || !strings.Contains(r.stdout, `"code": "not_running"`) {
		t.Errorf("status --json with no daemon: exit %d, stdout %q", r.code, r.stdout)
	}
	// Without --json, stdout stays empty.
	d.run("send", "nope", "hi").check(t, "send to no group", 1, "", `^parley send: no group named "nope"`)
}

func TestVersionShowsTheBuild(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		runParley(t.Context(), args...).check(t, args[0], 0, `^parley (\(devel\)|v\S+)(, commit [0-9a-f]+.*)?, go1\.\d+.*\n$`, "")
	}
	r := runParley(t.Context(), "version", "--json")
	var v buildVersion
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version --json: %q (%v)", r.stdout, err)
	}
}
