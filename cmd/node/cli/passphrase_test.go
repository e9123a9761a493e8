package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fakeTerminal answers passphrase prompts with its lines, in order.
type fakeTerminal struct {
	mu    sync.Mutex
	lines []string
	asked int
}

func (f *fakeTerminal) ReadPassword(ctx context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(f.lines) == 0 {
		return nil, io.EOF
	}
	line := f.lines[0]
	f.lines = f.lines[1:]
	return []byte(line), nil
}

// withTerminal makes standard input the terminal t (nil: not a
// terminal) for the test.
func withTerminal(t *testing.T, term terminal) {
	t.Helper()
	saved := stdinTerminal
	stdinTerminal = func() (terminal, bool) { return term, term != nil }
	t.Cleanup(func() { stdinTerminal = saved })
}

// noTerminal makes standard input not a terminal for the test, as in a
// script (and whatever 'go test' was started from).
func noTerminal(t *testing.T) { withTerminal(t, nil) }

func TestAskNewPassphrase(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lines []string
		ctx   func() context.Context
		want  string
		err   error
	}{
		{name: "match", lines: []string{"correct horse", "correct horse"}, want: "correct horse"},
		{name: "mismatch then match", lines: []string{"a1", "a2", "b", "b"}, want: "b"},
		{name: "empty then match", lines: []string{"", "c", "c"}, want: "c"},
		{name: "three mismatches", lines: []string{"a", "b", "c", "d", "e", "f", "g", "g"}, err: errMismatch},
		{name: "end of input", lines: []string{"a"}, err: io.EOF},
		{name: "interrupted", lines: []string{"a", "a"}, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			var prompts bytes.Buffer
			got, err := askNewPassphrase(ctx, &fakeTerminal{lines: tt.lines}, &prompts)
			switch {
			case tt.ctx != nil:
				if err == nil || err.Error() != "interrupted" {
					t.Fatalf("got %q, %v; want the error interrupted", got, err)
				}
			case tt.err != nil:
				if !errors.Is(err, tt.err) {
					t.Fatalf("got %q, %v; want %v", got, err, tt.err)
				}
			case err != nil || string(got) != tt.want:
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
			if strings.Contains(prompts.String(), "correct horse") {
				t.Errorf("the prompts show the passphrase: %q", prompts.String())
			}
		})
	}
}

func TestInitWithoutAPassphraseOrATerminalFails(t *testing.T) {
	noTerminal(t)
	dir := filepath.Join(t.TempDir(), "node")
	r := runParley(context.Background(), "init", "--name", "alice", "--data", dir)
	r.check(t, "init with no passphrase and no terminal", 1, "", "standard input is not a terminal")
	for _, flag := range []string{"--passphrase-file", "--passphrase-env", "--key-file"} {
		if !strings.Contains(r.stderr, flag) {
			t.Errorf("the error does not say %s: %q", flag, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "store")); !os.IsNotExist(err) {
		t.Errorf("init that failed made a store (%v)", err)
	}
	t.Setenv("TEST_PARLEY_PASS", "pass")
	r = runParley(context.Background(), "init", "--name", "alice", "--data", dir, "--key-file", "--passphrase-env", "TEST_PARLEY_PASS")
	r.check(t, "init with a passphrase and --key-file", 1, "", "not both")
}

// statusOf runs a daemon on dir with args, and returns what status and
// status --json print.
func statusOf(t *testing.T, dir string, args ...string) (string, map[string]any) {
	t.Helper()
	stop := runDaemon(t, append([]string{"--data", dir}, args...)...)
	waitSocket(t, dir)
	text := runParley(context.Background(), "status", "--data", dir)
	js := runParley(context.Background(), "status", "--json", "--data", dir)
	if code, stderr := stop(); code != 0 {
		t.Fatalf("daemon: exit %d, %q", code, stderr)
	}
	text.check(t, "status", 0, "peer id", "")
	var doc map[string]any
	if err := json.Unmarshal([]byte(js.stdout), &doc); err != nil {
		t.Fatalf("status --json: %v (%q)", err, js.stdout)
	}
	return text.stdout, doc
}

func TestInitWithAKeyFileSaysSoInStatus(t *testing.T) {
	noTerminal(t)
	dir := filepath.Join(t.TempDir(), "node")
	r := runParley(context.Background(), "init", "--name", "alice", "--data", dir, "--key-file")
	r.check(t, "init --key-file", 0, "sealed by key file", "")
	if _, err := os.Stat(filepath.Join(dir, "key")); err != nil {
		t.Fatalf("no key file: %v", err)
	}
	text, doc := statusOf(t, dir)
	want := "sealed by key file " + filepath.Join(dir, "key") + " (readable by anyone who can copy the directory)"
	if !strings.Contains(text, want) {
		t.Errorf("status: %q; want it to say %q", text, want)
	}
	st, _ := doc["store"].(map[string]any)
	if st["protection"] != "key_file" || st["key_file"] != filepath.Join(dir, "key") {
		t.Errorf("status --json store = %v; want protection key_file and the key file", doc["store"])
	}
}

func TestInitWithAPassphraseSaysSoInStatus(t *testing.T) {
	noTerminal(t)
	dir := filepath.Join(t.TempDir(), "node")
	pf := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(pf, []byte("correct horse battery staple\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runParley(context.Background(), "init", "--name", "alice", "--data", dir, "--passphrase-file", pf)
	r.check(t, "init --passphrase-file", 0, `sealed by passphrase \(argon2id\)`, "")
	if _, err := os.Stat(filepath.Join(dir, "key")); !os.IsNotExist(err) {
		t.Errorf("a passphrase store has a key file (%v)", err)
	}
	text, doc := statusOf(t, dir, "--passphrase-file", pf)
	if !strings.Contains(text, "sealed by passphrase (argon2id)") {
		t.Errorf("status: %q; want it to say passphrase (argon2id)", text)
	}
	if st, _ := doc["store"].(map[string]any); st["protection"] != "passphrase" {
		t.Errorf("status --json store = %v; want protection passphrase", doc["store"])
	}
}

// TestThePassphraseIsAskedOnTheTerminal: init asks twice (here a
// mismatch first), run asks again after a wrong one.
func TestThePassphraseIsAskedOnTheTerminal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	term := &fakeTerminal{lines: []string{"correct horse", "correct hose", "correct horse", "correct horse"}}
	withTerminal(t, term)
	r := runParley(context.Background(), "init", "--name", "alice", "--data", dir)
	r.check(t, "init on a terminal", 0, `sealed by passphrase \(argon2id\)`, "do not match; try again")
	if term.asked != 4 || len(term.lines) != 0 {
		t.Fatalf("init asked %d times, %d answers left; want 4, 0", term.asked, len(term.lines))
	}
	term.lines, term.asked = []string{"tr0ub4dor&3", "correct horse"}, 0
	text, _ := statusOf(t, dir)
	if term.asked != 2 {
		t.Errorf("run asked %d times; want 2 (a wrong passphrase, then the right one)", term.asked)
	}
	if !strings.Contains(text, "sealed by passphrase (argon2id)") {
		t.Errorf("status: %q", text)
	}
	// Three wrong ones: run gives up.
	term.lines, term.asked = []string{"a", "b", "c", "correct horse"}, 0
	r = runParley(context.Background(), "run", "--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0", "--data", dir)
	if !strings.HasSuffix(r.stderr, "\nparley run: wrong passphrase\n") || r.code != 1 || term.asked != 3 {
		t.Errorf("three wrong passphrases: exit %d after %d asked, %q", r.code, term.asked, r.stderr)
	}
}

// TestInitRefusesADataDirectoryWhoseSocketPathIsTooLong: init checks the
// API socket's path before it makes anything (it made the store, and then
// 'parley run' refused to listen there).
func TestInitRefusesADataDirectoryWhoseSocketPathIsTooLong(t *testing.T) {
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 120))
	r := runParley(context.Background(), "init", "--name", "alice", "--data", dir, "--key-file")
	r.check(t, "init in a directory with a long path", 1, "", "too long")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("init that failed made the directory (%v)", err)
	}
	ok := filepath.Join(t.TempDir(), "node")
	runParley(context.Background(), "init", "--name", "alice", "--data", ok, "--key-file").check(t, "init in a short path", 0, "^made ", "")
}
