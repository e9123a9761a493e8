package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
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

// TestDebugLogTellsTheCatchUp: at debug level a member back from a
// restart says what it caught up (the answers, with the full peer ID of
// the member that gave them), its epochs and what became final; peer IDs
// print in full, never as libp2p's "<peer.ID 12*...>" short form.
func TestDebugLogTellsTheCatchUp(t *testing.T) {
	ctx := context.Background()
	alice, bob, bobDir := pairInDir(t, "club")
	addrs := listenAddrs(bob)
	bob.Close()
	for _, text := range []string{"one", "two", "three"} {
		if _, err := alice.Send(ctx, "club", text); err != nil {
			t.Fatal(err)
		}
	}
	// Past gossipsub's message cache (6 heartbeats of 1 s, gossiped for
	// 4; p2p/params.go): a bob back sooner may get the texts by gossip
	// (IHAVE/IWANT), with no catch-up to log.
	time.Sleep(7 * time.Second)
	var logs syncBuffer
	bob, err := Open(ctx, Config{
		Dir: bobDir, Listen: addrs, TickInterval: 50 * time.Millisecond, UpdateInterval: -1,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	eventually(t, 30*time.Second, "bob has the three texts", func() bool { return len(texts(t, bob, "club")) == 3 })
	eventually(t, 10*time.Second, "bob logs the catch-up", func() bool {
		s := logs.String()
		return strings.Contains(s, "catch-up answer")
	})
	s := logs.String()
	alicePeer := alice.p2p.Host().ID().String()
	var answer string
	for line := range strings.Lines(s) {
		if strings.Contains(line, "catch-up answer") && strings.Contains(line, "envelopes=") && !strings.Contains(line, "envelopes=0") {
			answer = line
		}
	}
	if !strings.Contains(answer, alicePeer) {
		t.Errorf("no catch-up answer from alice (%s) with envelopes in the debug log; the answers:\n%s", alicePeer, grepLines(s, "catch-up answer"))
	}
	if strings.Contains(s, "<peer.ID") {
		t.Errorf("a peer ID in its short form in the log:\n%s", grepLines(s, "<peer.ID"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for line := range strings.Lines(s) {
		if strings.Contains(line, sub) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return strings.Join(out, "\n")
}
