package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// daemonCommands are the commands that talk to the daemon, each with
// arguments that would make it succeed on a daemon with a group
// "friends" and a contact "bob".
var daemonCommands = [][]string{
	{"id"},
	{"id", "--code"},
	{"contact", "add", "pc1-dave"},
	{"contacts"},
	{"contact", "rename", "bob", "robert"},
	{"contact", "remove", "bob"},
	{"group", "create", "chess"},
	{"group", "forget", "friends", "--force"},
	{"groups"},
	{"members", "friends"},
	{"invite", "friends", "bob"},
	{"invite", "friends"},
	{"invite", "friends", "--approve"},
	{"invite", "friends", "--approve-by", "members"},
	{"requests"},
	{"approve", "0123"},
	{"deny", "0123"},
	{"join", "pi1-chess"},
	{"send", "friends", "hi"},
	{"read", "friends"},
	{"remove", "friends", "bob"},
	{"leave", "friends"},
	{"status"},
}

func TestEveryCommandHappyPath(t *testing.T) {
	d := startDaemon(t)
	steps := []struct {
		args           []string
		stdout, stderr string
	}{
		{[]string{"contacts"}, `^no contacts yet; add one with 'parley contact add CODE'\n$`, ""},
		{[]string{"groups"}, `^no groups yet; create one with`, ""},
		{[]string{"id"}, `(?m)^name +alice\npeer id +12D3KooW\w+\nfingerprint +\d{5}( \d{5}){11}\naddresses +/ip4/127.0.0.1/tcp/4001\n +/ip4/127.0.0.1/udp/4001/quic-v1\n$`, ""},
		{[]string{"id", "--code"}, `^pc1-alice\n$`, ""},
		{[]string{"contact", "add", "pc1-bob"}, `^added bob, fingerprint \d{5}( \d{5}){11}\ncompare it with theirs, then: parley invite GROUP bob\n$`, ""},
		{[]string{"contact", "add", "pc1-carol", "--name", "carol smith"}, `^added carol smith,.*\n.*parley invite GROUP 'carol smith'\n$`, ""},
		{[]string{"contacts"}, `^NAME +STATUS +FINGERPRINT\nbob +online +\d{5}.*\ncarol smith +offline +\d{5}.*\n$`, ""},
		{[]string{"group", "create", "friends"}, `^created group friends \(id [0-9a-f]{32}, suite 0x0001\)\n$`, ""},
		{[]string{"groups"}, `^NAME +ID +EPOCH +MEMBERS +STATE\nfriends +[0-9a-f]{32} +0 +1 +member\n$`, ""},
		{[]string{"invite", "friends", "bob"}, `^invited bob to friends; they join when their node is online\n$`, ""},
		{[]string{"invite", "friends"}, `^pi1-friends\n$`, `^give this code to the person you invite; they run 'parley join CODE' and a member of friends adds them\n$`},
		{[]string{"members", "friends"}, `^NAME +STATUS +ADDED BY +FINGERPRINT\nalice \(you\) +online +- +\d{5}.*\nbob +online +alice +\d{5}.*\n\nsuite 0x0001 MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519\n$`, ""},
		{[]string{"join", "pi1-chess"}, `^joining chess; it shows as pending in 'parley groups' until a member adds you\n$`, ""},
		{[]string{"groups"}, `(?m)^chess +[0-9a-f]{32} +0 +0 +pending$`, ""},
		{[]string{"read", "friends"}, `^no messages in friends yet\n$`, ""},
		{[]string{"send", "friends", "hello", "there"}, `^sent to friends \(id [0-9a-f]{8}\)\n$`, ""},
		{[]string{"send", "friends", "--", "-5 degrees", "outside"}, `^sent to friends`, ""},
		{[]string{"send", "friends", "line one\nline two"}, `^sent to friends`, ""},
		{[]string{"read", "friends"}, `^ +1 ~ \S+( \S+)* +alice +hello there\n +2 ~ .* +alice +-5 degrees outside\n +3 ~ .* +alice +line one\n {20,}line two\n$`, ""},
		{[]string{"read", "friends", "--after", "1", "--limit", "1"}, `^ +2 ~ .*-5 degrees outside\n$`, ""},
		{[]string{"status"}, `^peer id +12D3KooW\w+\npeers +2\n\nGROUP +EPOCH +FINAL +MEMBERS +ONLINE +FORKS +ROLLBACKS +OUTBOX +SUITE +STATE\nfriends +1 +1 +2 +1 +0 +0 +0 +0x0001 +ok\nchess +0 +0 +0 +0 +0 +0 +0 +- +pending: waiting for a member to add you\n\nchess: the member you joined through must be online; it adds you when it is\n\nsuite 0x0001 MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519\n$`, ""},
		{[]string{"remove", "friends", "bob"}, `^removed bob from friends\n$`, ""},
		{[]string{"leave", "friends"}, `^asked the members of friends to remove you; you are out once one of them commits it\n$`, ""},
		{[]string{"groups"}, `(?m)^friends +[0-9a-f]{32} +2 +1 +removed$`, ""},
		{[]string{"group", "forget", "friends"}, `^forgot friends: its state and history are gone from this node\n$`, ""},
		{[]string{"group", "forget", "chess"}, `^forgot chess: `, ""},
		{[]string{"groups"}, `^no groups yet; create one with`, ""},
		{[]string{"contact", "rename", "carol smith", "carol"}, `^'carol smith' is now carol \(fingerprint \d{5}( \d{5}){11}\)\n$`, ""},
		{[]string{"contact", "remove", "bob"}, `^removed the contact bob \(the groups it is in keep it: 'parley remove GROUP bob' takes it out of one\)\n$`, ""},
		{[]string{"contacts"}, `^NAME +STATUS +FINGERPRINT\ncarol +offline +\d{5}.*\n$`, ""},
	}
	for i, s := range steps {
		if i == 20 {
			if err := d.b.Finalize("friends"); err != nil {
				t.Fatal(err)
			}
			d.run("read", "friends").check(t, "read after Finalize", 0, `^ +1 ✓ .*hello there\n +2 ✓ .*\n +3 ✓ `, "")
		}
		d.run(s.args...).check(t, strings.Join(s.args, " "), 0, s.stdout, s.stderr)
	}
}

func TestBadInputGetsOneActionableLine(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	if _, err := d.b.CreateGroup(ctx, "friends"); err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"pc1-bob", "pc1-carol"} {
		if _, err := d.b.AddContact(ctx, code, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.b.Invite(ctx, "friends", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.b.CreateGroup(ctx, "quiet"); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(file, []byte("notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	const noGroup = `^parley %s: no group named "nope"; 'parley groups' lists yours\n$`
	tests := []struct {
		args   []string
		stderr string
	}{
		// Unknown group, for every command that names one.
		{[]string{"send", "nope", "hi"}, fmt.Sprintf(noGroup, "send")},
		{[]string{"send", "nope", "--file", file}, fmt.Sprintf(noGroup, "send")},
		{[]string{"read", "nope"}, fmt.Sprintf(noGroup, "read")},
		{[]string{"read", "nope", "--follow"}, fmt.Sprintf(noGroup, "read")},
		{[]string{"members", "nope"}, fmt.Sprintf(noGroup, "members")},
		{[]string{"invite", "nope", "bob"}, fmt.Sprintf(noGroup, "invite")},
		{[]string{"invite", "nope"}, fmt.Sprintf(noGroup, "invite")},
		{[]string{"remove", "nope", "bob"}, fmt.Sprintf(noGroup, "remove")},
		{[]string{"leave", "nope"}, fmt.Sprintf(noGroup, "leave")},
		{[]string{"group", "forget", "nope"}, fmt.Sprintf(noGroup, "group forget")},
		// Unknown contact or member, in a known group.
		{[]string{"invite", "friends", "nobody"}, `^parley invite: no contact named "nobody"; 'parley contacts' lists yours, 'parley contact add CODE' adds one\n$`},
		{[]string{"invite", "friends", "bob"}, `^parley invite: bob is already a member of friends, or your invite of them is on its way \('parley members friends' lists the members\)\n$`},
		{[]string{"remove", "friends", "zed"}, `^parley remove: no member "zed" in "friends"; 'parley members friends' lists them\n$`},
		{[]string{"remove", "friends", "alice"}, `^parley remove: to remove yourself, leave the group: invalid argument\n$`},
		// Bad codes and names in use.
		{[]string{"contact", "add", "garbage"}, `^parley contact add: that is not a valid contact code .*'parley id --code'\n$`},
		{[]string{"join", "garbage"}, `^parley join: the invite code did not work: invite code "garbage" does not decode: invalid code; ask a member .*'parley invite GROUP'\n$`},
		{[]string{"contact", "add", "pc1-bob"}, `^parley contact add: you already have a contact by that name; pick another with --name NAME`},
		{[]string{"contact", "add", "pc1-x", "--name", "bob"}, `^parley contact add: you already have a contact named "bob"; pick another with --name\n$`},
		{[]string{"group", "create", "friends"}, `^parley group create: you already have a group named "friends"; pick another name\n$`},
		// Missing and extra arguments.
		{[]string{"send"}, `^parley send: missing GROUP \(usage: parley send GROUP TEXT\)\n$`},
		{[]string{"send", "friends"}, `^parley send: missing TEXT`},
		{[]string{"members"}, `^parley members: missing GROUP \(usage: parley members GROUP\)\n$`},
		{[]string{"invite"}, `^parley invite: missing GROUP`},
		{[]string{"join"}, `^parley join: missing CODE \(usage: parley join CODE\)\n$`},
		{[]string{"remove", "friends"}, `^parley remove: missing MEMBER \(usage: parley remove GROUP MEMBER\)\n$`},
		{[]string{"leave"}, `^parley leave: missing GROUP`},
		{[]string{"read"}, `^parley read: missing GROUP`},
		{[]string{"contact"}, `^parley contact: missing subcommand \(usage: parley contact add CODE \| rename CONTACT NAME \| remove CONTACT\)\n$`},
		{[]string{"contact", "add"}, `^parley contact add: missing CODE`},
		{[]string{"contact", "delete", "bob"}, `^parley contact: unknown subcommand "delete"`},
		{[]string{"contact", "rename", "bob"}, `^parley contact rename: missing NAME`},
		{[]string{"contact", "rename", "nobody", "x"}, `^parley contact rename: .*no contact.*nobody`},
		{[]string{"contact", "rename", "bob", "carol"}, `^parley contact rename: you already have a contact named "carol" \('parley contacts' lists them\)\n$`},
		{[]string{"contact", "remove"}, `^parley contact remove: missing CONTACT`},
		{[]string{"contact", "remove", "nobody"}, `^parley contact remove: .*no contact.*nobody`},
		{[]string{"group"}, `^parley group: missing subcommand \(usage: parley group create NAME, or parley group forget GROUP\)\n$`},
		{[]string{"group", "create"}, `^parley group create: missing NAME`},
		{[]string{"group", "forget"}, `^parley group forget: missing GROUP \(usage: parley group forget GROUP\)\n$`},
		{[]string{"group", "forget", "friends", "quiet"}, `^parley group forget: unexpected argument "quiet"`},
		{[]string{"group", "forget", "friends"}, `^parley group forget: you are a member of "friends": leave it first with 'parley leave friends' and forget it once you are out, or forget it now with --force \(the other members are not told\)\n$`},
		{[]string{"groups", "extra"}, `^parley groups: unexpected argument "extra" \(usage: parley groups\)\n$`},
		{[]string{"members", "friends", "extra"}, `^parley members: unexpected argument "extra"`},
		// Bad flags and flag values.
		{[]string{"read", "friends", "--limit", "x"}, `^parley read: invalid value "x" for flag -limit: parse error \(run 'parley read -h'\)\n$`},
		{[]string{"read", "friends", "--limit", "-1"}, `^parley read: --limit -1: want 0 \(all\) or more\n$`},
		{[]string{"read", "friends", "--after", "-1"}, `^parley read: invalid value "-1" for flag -after`},
		{[]string{"send", "friends", "hi", "--no-wait"}, `^parley send: --no-wait goes with --file\n$`},
		{[]string{"send", "friends", "hi", "--file", file}, `^parley send: give TEXT or --file PATH, not both\n$`},
		{[]string{"send", "friends", "--file", filepath.Join(t.TempDir(), "gone.txt")}, `^parley send: no file .*gone.txt\n$`},
		{[]string{"send", "friends", "--file", t.TempDir()}, `^parley send: .* is a directory; send one file at a time`},
		{[]string{"send", "friends", "--file"}, `^parley send: flag needs an argument: -file \(run 'parley send -h'\)\n$`},
		{[]string{"send", "friends", "\xff"}, `^parley send: TEXT is not valid UTF-8\n$`},
	}
	for _, tt := range tests {
		d.run(tt.args...).check(t, strings.Join(tt.args, " "), 1, "", tt.stderr)
	}
}

func TestStateErrorsExplainThemselves(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.must("join", "pi1-friends") // a second group named friends, pending
	d.run("send", "friends", "hi").check(t, "ambiguous group", 1, "",
		`^parley send: several groups are named "friends"; name it by its id \('parley groups' shows them\)\n$`)
	d.run("members", "friends").check(t, "ambiguous group", 1, "", `several groups are named "friends"`)

	d.must("group", "create", "solo")
	d.must("leave", "solo")
	d.run("send", "solo", "anyone?").check(t, "send after leave", 1, "",
		`^parley send: you are not a member of "solo" \(yet, or any more\); 'parley groups' shows its state\n$`)

	d.b.Fail = func(string) error { return fmt.Errorf("no route to bob: %w", api.ErrUnavailable) }
	d.run("groups").check(t, "unavailable", 1, "",
		`^parley groups: no route to bob: unavailable; the peers this needs are offline, try again when they are online \('parley status' shows peers\)\n$`)
	d.b.Fail = func(string) error { return errors.New("disk on fire") }
	d.run("status").check(t, "internal error", 1, "", `^parley status: the daemon failed: disk on fire\n$`)
	d.b.Fail = func(string) error { return errors.New("line one\nline two\x1b[31m") }
	d.run("contacts").check(t, "multi-line error", 1, "", `^parley contacts: the daemon failed: line one line two\x{FFFD}\[31m\n$`)
}

func TestDaemonNotRunning(t *testing.T) {
	data := t.TempDir()
	// With --data, the hint names it: 'parley run' alone would start
	// another daemon.
	want := `^parley [a-z ]+: parley daemon is not running \(no socket at ` + regexpQuote(filepath.Join(data, socketFile)) + `\); start it with 'parley run --data ` + regexpQuote(data) + `'\n$`
	for _, args := range daemonCommands {
		runParley(context.Background(), withData(args, data)...).check(t, strings.Join(args, " "), 1, "", want)
	}
	// PARLEY_DATA is used when --data is not given, by run too.
	want = `^parley [a-z ]+: parley daemon is not running \(no socket at ` + regexpQuote(filepath.Join(data, socketFile)) + `\); start it with 'parley run'\n$`
	t.Setenv("PARLEY_DATA", data)
	runParley(context.Background(), "groups").check(t, "groups with PARLEY_DATA", 1, "", want)
}

func regexpQuote(s string) string {
	return strings.NewReplacer(`.`, `\.`, `(`, `\(`, `)`, `\)`, `+`, `\+`).Replace(s)
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, args := range append(daemonCommands, []string{"contact"}, []string{"group"}) {
		name := args[0]
		if name == "contact" || name == "group" {
			args = args[:1]
		}
		for _, h := range []string{"-h", "--help"} {
			r := runParley(context.Background(), slices.Concat(args, []string{h})...)
			r.check(t, strings.Join(args, " ")+" "+h, 0, `^Usage: parley `+name+` (.|\n)*--data DIR`, "")
		}
	}
	runParley(context.Background(), "help").check(t, "help", 0, `(?m)^  send +send a message`, "")
}

func TestEveryCommandRejectsAnUnknownFlag(t *testing.T) {
	for _, args := range daemonCommands {
		r := runParley(context.Background(), slices.Concat(args, []string{"--bogus"})...)
		name := args[0]
		if name == "contact" || name == "group" {
			name += " " + args[1]
		}
		r.check(t, strings.Join(args, " ")+" --bogus", 1, "",
			`^parley `+name+`: flag provided but not defined: -bogus \(run 'parley `+name+` -h'\)\n$`)
	}
}

func TestJSONOutput(t *testing.T) {
	d := startDaemon(t)
	decode := func(v any, args ...string) {
		t.Helper()
		out := d.must(slices.Concat(args, []string{"--json"})...)
		dec := json.NewDecoder(strings.NewReader(out))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("parley %s --json: %v\n%s", strings.Join(args, " "), err, out)
		}
		if dec.More() {
			t.Errorf("parley %s --json: more than one JSON document:\n%s", strings.Join(args, " "), out)
		}
	}
	var (
		id       api.Identity
		code     struct{ Code string }
		contact  api.Contact
		contacts []api.Contact
		group    api.Group
		groups   []api.Group
		members  []api.Member
		invite   struct{ Group, Code string }
		invited  struct{ Group, Contact string }
		sent     struct{ ID string }
		messages []api.Message
		status   api.Status
	)
	decode(&contacts, "contacts")
	decode(&groups, "groups")
	if contacts == nil || groups == nil {
		t.Errorf("empty lists printed as null: %v, %v", contacts, groups)
	}
	decode(&id, "id")
	decode(&code, "id", "--code")
	decode(&contact, "contact", "add", apitest.ContactPrefix+"bob")
	decode(&contacts, "contacts")
	decode(&group, "group", "create", "friends")
	decode(&groups, "groups")
	decode(&invite, "invite", "friends")
	decode(&invited, "invite", "friends", "bob")
	decode(&members, "members", "friends")
	decode(&group, "join", apitest.InvitePrefix+"chess")
	decode(&sent, "send", "friends", "hi")
	decode(&messages, "read", "friends")
	decode(&status, "status")
	switch {
	case id.Name != "alice", code.Code != "pc1-alice", contact.Name != "bob", len(contacts) != 1,
		!group.Pending, len(groups) != 1, invite.Code != "pi1-friends", invited.Contact != "bob",
		len(members) != 2, sent.ID == "", len(messages) != 1 || messages[0].ID != sent.ID,
		len(status.Groups) != 2:
		t.Errorf("unexpected JSON values: %+v %+v %+v %+v %+v %+v %+v %+v %+v %+v %+v %+v",
			id, code, contact, contacts, group, groups, invite, invited, members, sent, messages, status)
	}
}

func TestSocketPathRejectsAFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := socketPath(file); err == nil {
		t.Error("socketPath accepted a regular file as the data directory")
	}
	r := runParley(t.Context(), "groups", "--data", file)
	r.check(t, "groups --data FILE", 1, "", `^parley groups: data directory .*/data is not a directory\n$`)
}

func TestDamagedGroupShowsTheWayOut(t *testing.T) {
	d := startDaemon(t)
	ctx := context.Background()
	for _, name := range []string{"friends", "book club"} {
		if _, err := d.b.CreateGroup(ctx, name); err != nil {
			t.Fatal(err)
		}
		d.must("send", name, "before the damage")
	}
	if err := d.b.Damage("friends", "ordering state fails its checksum"); err != nil {
		t.Fatal(err)
	}
	if err := d.b.Damage("book club", "group record unreadable"); err != nil {
		t.Fatal(err)
	}
	d.must("group", "create", "chess")

	d.run("groups").check(t, "groups", 0,
		`^NAME +ID +EPOCH +MEMBERS +STATE\n`+
			`friends +[0-9a-f]{32} +0 +0 +damaged: ordering state fails its checksum; 'parley group forget friends', then ask a member to remove and re-invite you\n`+
			`book club +[0-9a-f]{32} +0 +0 +damaged: group record unreadable; 'parley group forget 'book club'', then ask a member to remove and re-invite you\n`+
			`chess +[0-9a-f]{32} +0 +1 +member\n$`, "")
	d.run("status").check(t, "status", 0,
		`(?m)^friends( +\d+){7} +(0x[0-9a-f]{4}|-) +damaged: ordering state fails its checksum\n`+
			`book club( +\d+){7} +(0x[0-9a-f]{4}|-) +damaged: group record unreadable\nchess( +\d+){7} +0x[0-9a-f]{4} +ok\n\n`+
			`friends: run parley group forget friends, then ask a member to remove and re-invite you\n`+
			`book club: run parley group forget 'book club', then ask a member to remove and re-invite you\n`, "")
	var groups []api.Group
	if err := json.Unmarshal([]byte(d.must("groups", "--json")), &groups); err != nil || len(groups) != 3 || groups[0].Damaged != "ordering state fails its checksum" {
		t.Errorf("groups --json: %+v, %v; want friends with its damage", groups, err)
	}

	// What needs the group's state fails with the reason and the way out;
	// the history stays readable.
	const wayOut = `^parley %s: group damaged: "friends" cannot be used \(ordering state fails its checksum\); its history stays readable with 'parley read'; to take part again run 'parley group forget friends' and ask a member to remove and re-invite you\n$`
	for _, args := range [][]string{{"send", "friends", "hi"}, {"invite", "friends"}, {"members", "friends"}, {"leave", "friends"}} {
		d.run(args...).check(t, strings.Join(args, " "), 1, "", fmt.Sprintf(wayOut, args[0]))
	}
	d.run("chat", "friends").check(t, "chat", 1, "", `^parley chat: "friends" is damaged \(ordering state fails its checksum\): read its history with 'parley read friends'; to take part again, 'parley group forget friends', then ask a member to remove and re-invite you\n$`)
	d.run("read", "friends").check(t, "read", 0, `^ +1 ~ .* +alice +before the damage\n$`, "")

	d.must("group", "forget", "friends")
	d.must("group", "forget", "book club")
	d.run("groups").check(t, "groups after forget", 0, `^NAME +ID +EPOCH +MEMBERS +STATE\nchess +[0-9a-f]{32} +0 +1 +member\n$`, "")
}

// TestJoinsWaitForApproval: an invite code made with --approve, a join
// request listed with its name and fingerprint, approved or denied by
// its id; the ids no request has are refused with the way to list them.
func TestJoinsWaitForApproval(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.run("requests").check(t, "requests, none", 0, `^no joins wait for your approval; 'parley invite GROUP --approve' makes a code whose joins do\n$`, "")
	d.run("invite", "friends", "--approve").check(t, "invite --approve", 0, `^pi1-friends\n$`,
		`^give this code to the person you invite; when they run 'parley join CODE', 'parley requests' shows them and 'parley approve ID' adds them to friends\n$`)
	d.run("invite", "friends", "bob", "--approve").check(t, "invite a contact --approve", 1, "", `^parley invite: --approve is for an invite code`)
	first, err := d.b.RequestJoin("friends", "erin")
	if err != nil {
		t.Fatal(err)
	}
	second, err := d.b.RequestJoin("friends", "frank")
	if err != nil {
		t.Fatal(err)
	}
	d.run("requests").check(t, "requests", 0,
		`^ID +GROUP +NAME +INVITED BY +DECIDES +ASKED +FINGERPRINT\n`+first+` +friends +erin +alice +you +\S+ ago +\d{5}.*\n`+second+` +friends +frank +alice +you +.*\n\ncompare each fingerprint with theirs, then: parley approve ID, or parley deny ID\n$`, "")
	d.run("approve", first).check(t, "approve", 0, `^approved `+first+`: they are added to the group and join when their node is online\n$`, "")
	d.run("deny", second).check(t, "deny", 0, `^denied `+second+`\n$`, "")
	d.run("approve", first).check(t, "approve again", 1, "", `^parley approve: no join request `+first+`; 'parley requests' lists them\n$`)
	d.run("deny", "nope").check(t, "deny of nothing", 1, "", `^parley deny: no join request nope; 'parley requests' lists them\n$`)
	d.run("approve").check(t, "approve without an id", 1, "", `^parley approve: missing ID`)
	d.run("members", "friends").check(t, "members", 0, `(?m)^erin +`, "")
	var rs []api.JoinRequest
	if err := json.Unmarshal([]byte(d.must("requests", "--json")), &rs); err != nil || len(rs) != 0 {
		t.Errorf("requests --json after both: %v %v", rs, err)
	}
}

// TestJoinTellsWhoApproves: a join whose code waits for an approval says
// whose, and so does status, with what to do.
func TestJoinTellsWhoApproves(t *testing.T) {
	d := startDaemon(t)
	d.run("join", "pi1-chess@inviter").check(t, "join, the inviter approves", 0,
		`^joining chess; the member who invited you approves each join: it shows as pending in 'parley groups' until they do\n$`, "")
	d.run("join", "pi1-go@members").check(t, "join, a member approves", 0,
		`^joining go; a member of the group approves each join: it shows as pending in 'parley groups' until one does\n$`, "")
	d.run("status").check(t, "status", 0,
		`(?s)\nchess +0 .* +pending: waiting for the member who invited you to approve your join\ngo +0 .* +pending: waiting for a member to approve your join\n.*\nchess: ask them to run parley requests, then parley approve; compare fingerprints when they ask\ngo: ask any member to run parley requests, then parley approve; compare fingerprints when they ask\n`, "")
}

// TestJoinsAnyMemberApproves: an invite code made with --approve-by
// members says that any member approves; the requests list says who
// invited each joiner and who decides; approve and deny take either kind;
// a bad --approve-by, or one with --approve or a contact, is refused.
func TestJoinsAnyMemberApproves(t *testing.T) {
	d := startDaemon(t)
	d.must("group", "create", "friends")
	d.run("invite", "friends", "--approve-by", "members").check(t, "invite --approve-by members", 0, `^pi1-friends\n$`,
		`^give this code to the person you invite; when they run 'parley join CODE', any member of friends approves them: 'parley requests' shows them to every member and 'parley approve ID' adds them\n$`)
	var out struct {
		Code      string `json:"code"`
		ApproveBy string `json:"approve_by"`
	}
	if err := json.Unmarshal([]byte(d.must("invite", "friends", "--approve-by", "members", "--json")), &out); err != nil || out.ApproveBy != "members" {
		t.Errorf("invite --approve-by members --json: %+v, %v; want approve_by members", out, err)
	}
	if err := json.Unmarshal([]byte(d.must("invite", "friends", "--approve-by", "inviter", "--json")), &out); err != nil || out.ApproveBy != "inviter" {
		t.Errorf("invite --approve-by inviter --json: %+v, %v; want approve_by inviter", out, err)
	}
	d.run("invite", "friends", "--approve-by", "everyone").check(t, "invite --approve-by everyone", 1, "", `^parley invite: --approve-by is inviter or members, not "everyone"\n$`)
	d.run("invite", "friends", "--approve", "--approve-by", "members").check(t, "invite --approve --approve-by members", 1, "", `^parley invite: --approve is --approve-by inviter; give one of them\n$`)
	d.run("invite", "friends", "bob", "--approve-by", "members").check(t, "invite a contact --approve-by members", 1, "", `^parley invite: --approve is for an invite code`)
	if got := d.b.LastInviteSettings(); got != (api.InviteSettings{Approve: true}) {
		t.Errorf("the last code made was made with %+v, want the inviter's approval", got)
	}

	shared, err := d.b.RequestSharedJoin("friends", "erin", "bob")
	if err != nil {
		t.Fatal(err)
	}
	own, err := d.b.RequestJoin("friends", "frank")
	if err != nil {
		t.Fatal(err)
	}
	d.run("requests").check(t, "requests", 0,
		`^ID +GROUP +NAME +INVITED BY +DECIDES +ASKED +FINGERPRINT\n`+shared+` +friends +erin +bob +any member +\S+ ago +\d{5}.*\n`+own+` +friends +frank +alice +you +\S+ ago +\d{5}.*\n\ncompare each fingerprint with theirs, then: parley approve ID, or parley deny ID\n$`, "")
	d.run("approve", shared).check(t, "approve the shared request", 0, `^approved `+shared+`: they are added to the group and join when their node is online\n$`, "")
	d.run("deny", own).check(t, "deny", 0, `^denied `+own+`\n$`, "")
	d.run("members", "friends").check(t, "members", 0, `(?m)^erin +`, "")
	var rs []api.JoinRequest
	if err := json.Unmarshal([]byte(d.must("requests", "--json")), &rs); err != nil || len(rs) != 0 {
		t.Errorf("requests --json after both: %v %v", rs, err)
	}
}
