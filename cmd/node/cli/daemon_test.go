package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// runDaemon starts 'parley run' in this process and returns a function
// that stops it and returns its exit status and stderr.
func runDaemon(t *testing.T, args ...string) func() (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, append([]string{"run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--log-level", "error"}, args...), &bytes.Buffer{}, &stderr)
	}()
	return func() (int, string) {
		cancel()
		select {
		case code := <-done:
			return code, stderr.String()
		case <-time.After(30 * time.Second):
			t.Fatal("the daemon did not stop")
			return 0, ""
		}
	}
}

func waitSocket(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out bytes.Buffer
		if Run(context.Background(), []string{"status", "--data", dir}, &out, &out) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not come up: %s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestInitAndRunWithTheirBadInput(t *testing.T) {
	noTerminal(t)
	dir := filepath.Join(t.TempDir(), "node")
	t.Setenv("TEST_PARLEY_PASS", "correct horse battery staple")
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	if code, _, stderr := run("init", "--data", dir); code != 1 || !strings.Contains(stderr, "--name") {
		t.Errorf("init without a name: exit %d, %q", code, stderr)
	}
	if code, out, stderr := run("init", "--name", "alice", "--data", dir, "--passphrase-env", "TEST_PARLEY_PASS"); code != 0 || !strings.Contains(out, "fingerprint") {
		t.Fatalf("init: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr := run("init", "--name", "alice", "--data", dir); code != 1 || !strings.Contains(stderr, "already holds a parley node") {
		t.Errorf("init twice: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run("status", "--data", dir); code != 1 || !strings.Contains(stderr, "not running") {
		t.Errorf("status with no daemon: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run("run", "--log-level", "loud", "--data", dir); code != 1 || !strings.Contains(stderr, `--log-level "loud": want trace, debug, info, warn or error`) {
		t.Errorf("run --log-level loud: exit %d, %q", code, stderr)
	}
	// Wrong and missing passphrase: one line, exit 1.
	t.Setenv("TEST_PARLEY_WRONG", "tr0ub4dor&3")
	stop := runDaemon(t, "--data", dir, "--passphrase-env", "TEST_PARLEY_WRONG")
	if code, stderr := stop(); code != 1 || !strings.Contains(stderr, "wrong passphrase") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("wrong passphrase: exit %d, %q", code, stderr)
	}
	stop = runDaemon(t, "--data", dir)
	if code, stderr := stop(); code != 1 || !strings.Contains(stderr, "sealed with a passphrase and standard input is not a terminal") {
		t.Errorf("no passphrase and no terminal: exit %d, %q", code, stderr)
	}
	// The right one; then a second daemon on the same directory.
	stop = runDaemon(t, "--data", dir, "--passphrase-env", "TEST_PARLEY_PASS")
	waitSocket(t, dir)
	if code, out, stderr := run("status", "--data", dir); code != 0 || !strings.Contains(out, "sealed by passphrase (argon2id)") {
		t.Errorf("status of a passphrase store: exit %d, %q %q", code, out, stderr)
	}
	second := runDaemon(t, "--data", dir, "--passphrase-env", "TEST_PARLEY_PASS")
	if code, stderr := second(); code != 1 || !strings.Contains(stderr, "another parley daemon is running") {
		t.Errorf("second daemon: exit %d, %q", code, stderr)
	}
	if code, out, stderr := run("group", "create", "friends", "--data", dir); code != 0 {
		t.Errorf("group create: exit %d, %q %q", code, out, stderr)
	}
	if code, _, stderr := run("send", "nosuchgroup", "hi", "--data", dir); code != 1 || !strings.Contains(stderr, "no group named") {
		t.Errorf("unknown group: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run("join", "parley-invite:bogus", "--data", dir); code != 1 || stderr == "" {
		t.Errorf("bad invite code: exit %d, %q", code, stderr)
	}
	if code, stderr := stop(); code != 0 {
		t.Errorf("daemon stopped with exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "parley.sock")); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after a clean stop (%v)", err)
	}
	// A node sealed with a key file, run with a passphrase.
	keyed := filepath.Join(t.TempDir(), "keyed")
	if code, out, stderr := run("init", "--name", "bob", "--data", keyed, "--key-file"); code != 0 {
		t.Fatalf("init with a key file: exit %d, %q %q", code, out, stderr)
	}
	stop = runDaemon(t, "--data", keyed, "--passphrase-env", "TEST_PARLEY_PASS")
	if code, stderr := stop(); code != 1 || !strings.Contains(stderr, "key file") {
		t.Errorf("passphrase for a key-file store: exit %d, %q", code, stderr)
	}
	// A data directory with no node.
	if code, _, stderr := run("run", "--data", t.TempDir()); code != 1 || !strings.Contains(stderr, "parley init") {
		t.Errorf("run on an empty directory: exit %d, %q", code, stderr)
	}
}

func TestIDWithoutTheDaemonReadsTheDataDirectory(t *testing.T) {
	noTerminal(t)
	dir := filepath.Join(t.TempDir(), "node")
	t.Setenv("TEST_PARLEY_PASS", "correct horse battery staple")
	made := runParley(t.Context(), "init", "--name", "alice", "--data", dir, "--passphrase-env", "TEST_PARLEY_PASS")
	if made.code != 0 {
		t.Fatalf("init: exit %d, %q", made.code, made.stderr)
	}
	peerID := regexp.MustCompile(`peer ID +(\S+)`).FindStringSubmatch(made.stdout)[1]
	runParley(t.Context(), "id", "--data", dir).check(t, "id of a passphrase store, no passphrase", 1, "",
		`^parley id: the store in .* is sealed with a passphrase and standard input is not a terminal to ask it on: give --passphrase-file F or --passphrase-env V\n$`)
	runParley(t.Context(), "id", "--data", dir, "--passphrase-env", "TEST_PARLEY_PASS").check(t, "id with the passphrase", 0,
		`^name +alice\npeer id +`+peerID+`\nfingerprint +\d{5}( \d{5})+\naddresses +\(none: the daemon is not running; start it with 'parley run --data .*'\)\n$`, "")
	t.Setenv("TEST_PARLEY_WRONG", "tr0ub4dor&3")
	runParley(t.Context(), "id", "--data", dir, "--passphrase-env", "TEST_PARLEY_WRONG").check(t, "id with a wrong passphrase", 1, "", `^parley id: wrong passphrase\n$`)
	runParley(t.Context(), "id", "--code", "--data", dir).check(t, "id --code", 1, "", `not running`)
	runParley(t.Context(), "id", "--data", t.TempDir()).check(t, "id of no node", 1, "", `^parley id: parley daemon is not running`)

	keyed := filepath.Join(t.TempDir(), "keyed")
	runParley(t.Context(), "init", "--name", "bob", "--data", keyed, "--key-file").check(t, "init --key-file", 0, "bob", "")
	r := runParley(t.Context(), "--json", "id", "--data", keyed)
	var id api.Identity
	if err := json.Unmarshal([]byte(r.stdout), &id); r.code != 0 || err != nil || id.Name != "bob" || id.Fingerprint == "" {
		t.Errorf("id --json of a key-file store: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestInitNamesTheRunCommandThatOpensTheStore: init's "next:" line is a
// command that works as printed: the data directory, and the passphrase
// from where init read it (nothing more for a key file, or when asked on
// the terminal, as run asks too).
func TestInitNamesTheRunCommandThatOpensTheStore(t *testing.T) {
	noTerminal(t)
	t.Setenv("TEST_PARLEY_PASS", "correct horse battery staple")
	base := t.TempDir()
	pfile := filepath.Join(base, "pass phrase")
	if err := os.WriteFile(pfile, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string // the hint, after "next: parley run --data DIR"
	}{
		{"env", []string{"--passphrase-env", "TEST_PARLEY_PASS"}, " --passphrase-env TEST_PARLEY_PASS"},
		{"file", []string{"--passphrase-file", pfile}, " --passphrase-file '" + pfile + "'"},
		{"key file", []string{"--key-file"}, ""},
	} {
		dir := filepath.Join(base, c.name)
		r := runParley(t.Context(), append([]string{"init", "--name", "alice", "--data", dir}, c.args...)...)
		want := "next: parley run --data " + quoteArg(dir) + c.want + "\n"
		if r.code != 0 || !strings.HasSuffix(r.stdout, want) {
			t.Errorf("init with %s: exit %d, %q; want it to end %q", c.name, r.code, r.stdout, want)
		}
	}
}
