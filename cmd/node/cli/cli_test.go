package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
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
	if len(reports) != 7 {
		t.Fatalf("%d suites reported, want 7", len(reports))
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
		if code := Run(context.Background(), []string{"demo", "-suite", s}, &out, &errOut); code != 0 {
			t.Fatalf("suite %s: exit %d: %s", s, code, errOut.String())
		}
		if !strings.Contains(out.String(), "done in") || !strings.Contains(out.String(), "learns it was removed") {
			t.Errorf("suite %s: demo output incomplete:\n%s", s, out.String())
		}
	}
}
