package store

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestBadgerRepeatsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	b := newBadgerLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	now := time.Unix(1e9, 0)
	b.now = func() time.Time { return now }
	for i := range 100 {
		b.Errorf("Unable to read: Key: %v, Version : %v", i, 7)
	}
	b.Warningf("another message %d", 1)
	for range 20 {
		b.Infof("chatter") // below warning level: never limited
	}
	lines := func() []string { return strings.Split(strings.TrimSpace(buf.String()), "\n") }
	if got := count(lines(), "Unable to read"); got != badgerBurst {
		t.Fatalf("%d lines of a repeated error in one window, want %d", got, badgerBurst)
	}
	if got := count(lines(), "another message"); got != 1 {
		t.Fatalf("another message: %d lines, want 1 (limits are per message)", got)
	}
	if got := count(lines(), "chatter"); got != 20 {
		t.Fatalf("chatter: %d lines, want 20", got)
	}
	buf.Reset()
	now = now.Add(badgerWindow)
	b.Errorf("Unable to read: Key: %v, Version : %v", 100, 7)
	out := buf.String()
	if !strings.Contains(out, "Unable to read: Key: 100") || !strings.Contains(out, "suppressed_before=95") {
		t.Fatalf("first line of the next window = %q, want the line and suppressed_before=95", out)
	}
}

func count(lines []string, sub string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}
