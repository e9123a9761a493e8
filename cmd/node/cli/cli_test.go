package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/mls/suite"
)

func TestSuitesChecksEverySuite(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"suites", "-json"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
	var reports []suiteReport
	if err := json.Unmarshal(out.Bytes(), &reports); err != nil {
		t.Fatalf("decoding JSON output: %v\n%s", err, out.String())
	}
	if len(reports) != len(suite.All) {
		t.Fatalf("%d suites reported, want %d", len(reports), len(suite.All))
	}
	for _, r := range reports {
		if !r.OK {
			t.Errorf("suite 0x%04x failed: %s", r.ID, r.Error)
		}
	}
}

func TestUnknownCommandFailsWithOneLine(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"frobnicate"}, &out, &errOut); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if lines := strings.Count(strings.TrimSpace(errOut.String()), "\n"); lines != 0 || !strings.Contains(errOut.String(), "frobnicate") {
		t.Errorf("stderr = %q, want one line naming the command", errOut.String())
	}
}

func TestHelpExitsZero(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"suites", "-h"}, &out, &errOut); code != 0 {
		t.Errorf("suites -h: exit %d", code)
	}
	if code := Run(context.Background(), []string{"help"}, &out, &errOut); code != 0 {
		t.Errorf("help: exit %d", code)
	}
}

func TestDemoFormsAGroupInEverySuite(t *testing.T) {
	for _, s := range []string{"1", "2", "3", "4", "5", "6", "7"} {
		var out, errOut bytes.Buffer
		if code := Run(context.Background(), []string{"mls-demo", "-suite", s}, &out, &errOut); code != 0 {
			t.Fatalf("suite %s: exit %d: %s", s, code, errOut.String())
		}
		if !strings.Contains(out.String(), "done in") || !strings.Contains(out.String(), "learns it was removed") {
			t.Errorf("suite %s: demo output incomplete:\n%s", s, out.String())
		}
	}
}

func TestDemoFormsAGroupOnLoopbackAndResolvesTheFork(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Run(context.Background(), []string{"demo"}, &out, &errOut); code != 0 {
		t.Fatalf("demo exited %d: %s\n%s", code, errOut.String(), out.String())
	}
	s := out.String()
	for _, want := range []string{"carol is in \"demo\"", "received \"hi alice!\" from bob", "competing commits on epoch", "won, yours was rolled back",
		"resolved: every member kept", "carol's history:", "Done in", "'go build -o parley ./cmd/node'"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
	// Every node ends on the same epoch authenticator.
	var auths []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "epoch authenticator "); i >= 0 {
			auths = append(auths, strings.Fields(line[i:])[2])
		}
	}
	if len(auths) != 3 || auths[0] != auths[1] || auths[1] != auths[2] {
		t.Errorf("the nodes end on different epochs: %v", auths)
	}
	// One refresh each by bob and carol makes one fork, and alice, who
	// only watches, does not commit in it: each node says so once.
	if n := strings.Count(s, "competing commits on epoch"); n != 3 {
		t.Errorf("%d notices of competing commits, want one per node:\n%s", n, s)
	}
}
