package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api/apitest"
)

// daemon is a fake daemon for the CLI: the in-memory Backend served on
// a socket in a temporary data directory.
type daemon struct {
	t    *testing.T
	data string
	b    *apitest.Backend
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	d := &daemon{t: t, data: t.TempDir(), b: apitest.New()}
	apitest.Start(t, d.b, filepath.Join(d.data, socketFile))
	return d
}

// result is what a command printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// run runs parley with args and --data pointing at the daemon, given
// right after the command so that it stays before any "--".
func (d *daemon) run(args ...string) result {
	d.t.Helper()
	return runParley(context.Background(), withData(args, d.data)...)
}

// withData returns a copy of args with --data dir after the command
// (and its subcommand).
func withData(args []string, dir string) []string {
	n := min(1, len(args))
	if n == 1 && (args[0] == "contact" || args[0] == "group") && len(args) > 1 {
		n = 2
	}
	return slices.Concat(args[:n], []string{"--data", dir}, args[n:])
}

// must runs a command that must succeed and returns its stdout.
func (d *daemon) must(args ...string) string {
	d.t.Helper()
	r := d.run(args...)
	if r.code != 0 {
		d.t.Fatalf("parley %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func runParley(ctx context.Context, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := Run(ctx, args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// check compares r with an exit code and patterns for its outputs; an
// empty pattern wants an empty output. A failure must print one line on
// stderr.
func (r result) check(t *testing.T, what string, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d (stderr %q)", what, r.code, code, r.stderr)
	}
	match := func(name, got, pattern string) {
		t.Helper()
		if pattern == "" {
			if got != "" {
				t.Errorf("%s: %s = %q, want it empty", what, name, got)
			}
			return
		}
		if !regexp.MustCompile(pattern).MatchString(got) {
			t.Errorf("%s: %s = %q, want a match for %q", what, name, got, pattern)
		}
	}
	match("stdout", r.stdout, stdout)
	match("stderr", r.stderr, stderr)
	if code != 0 && strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("%s: stderr %q is not one line", what, r.stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing in one
// goroutine while the test reads in another.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits up to 5 seconds for cond to hold.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}
