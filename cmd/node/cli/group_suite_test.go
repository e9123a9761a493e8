package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// TestGroupCreateTakesASuite: --suite takes a suite's number (hex or
// decimal) or name, sends it to the daemon, and the group's suite shows in
// create's and members' output; a suite that does not exist, or that
// nodes cannot use, is one line on stderr before the daemon is asked.
func TestGroupCreateTakesASuite(t *testing.T) {
	d := startDaemon(t)
	steps := []struct {
		args           []string
		code           int
		stdout, stderr string
	}{
		{[]string{"group", "create", "quantum", "--suite", "0x0054"}, 0, `^created group quantum \(id [0-9a-f]{32}, suite 0x0054\)\n$`, ""},
		{[]string{"group", "create", "--suite", "84", "decimal"}, 0, `^created group decimal \(id [0-9a-f]{32}, suite 0x0054\)\n$`, ""},
		{[]string{"group", "create", "named", "--suite", "mls_256_xwing_aes256gcm_sha512_ed25519"}, 0, `suite 0x0053\)\n$`, ""},
		{[]string{"group", "create", "classic", "--suite", "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519"}, 0, `suite 0x0001\)\n$`, ""},
		{[]string{"members", "quantum"}, 0, `\n\nsuite 0x0054 MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519\n$`, ""},
		{[]string{"group", "create", "nope", "--suite", "0x0099"}, 1, "", `^parley group create: unknown cipher suite "0x0099" \('parley suites' lists them\)\n$`},
		{[]string{"group", "create", "nope", "--suite", "MLS_128_NOTHING"}, 1, "", `^parley group create: unknown cipher suite "MLS_128_NOTHING"`},
		{[]string{"group", "create", "nope", "--suite", "2"}, 1, "", `^parley group create: MLS_128_DHKEMP256_AES128GCM_SHA256_P256 \(0x0002\) does not sign with Ed25519, the key of a Parley identity; groups can use 0x0001, 0x0003, 0x0053, 0x0054\n$`},
		{[]string{"group", "create", "nope", "--suite"}, 1, "", `^parley group create: flag needs an argument: -suite \(run 'parley group create -h'\)\n$`},
	}
	for _, s := range steps {
		d.run(s.args...).check(t, strings.Join(s.args, " "), s.code, s.stdout, s.stderr)
	}
	var list []api.Group
	if err := json.Unmarshal([]byte(d.must("groups", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]uint16{}
	for _, g := range list {
		got[g.Name] = g.Suite
	}
	want := map[string]uint16{"quantum": 0x54, "decimal": 0x54, "named": 0x53, "classic": 1}
	if len(got) != len(want) {
		t.Errorf("groups: %v, want %v", got, want)
	}
	for name, cs := range want {
		if got[name] != cs {
			t.Errorf("group %s in suite 0x%04x, want 0x%04x", name, got[name], cs)
		}
	}
}
