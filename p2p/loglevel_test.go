package p2p

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// TestGossipsubDebugLinesOnlyWhenAsked: two nodes exchanging messages
// with the node's logger at debug write gossipsub's per-RPC lines only
// with WithPubSubDebug; the node's own debug lines come either way.
func TestGossipsubDebugLinesOnlyWhenAsked(t *testing.T) {
	for _, on := range []bool{false, true} {
		var buf lockedBuffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		a := startNode(t, nil, WithLogger(log), WithPubSubDebug(on))
		b := startNode(t, nil)
		connect(t, a, b)
		ta, tb := join(t, a, "log-test", nil), join(t, b, "log-test", nil)
		waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })
		in := collect(t, ta)
		if err := tb.Publish(t.Context(), []byte("hello")); err != nil {
			t.Fatal(err)
		}
		eventually(t, waitShort, "the message", func() bool { return in.has("hello") })
		rpc := strings.Contains(buf.String(), "msg=received") || strings.Contains(buf.String(), "msg=sent")
		if rpc != on {
			t.Errorf("WithPubSubDebug(%v): gossipsub RPC lines in the log: %v", on, rpc)
		}
	}
}

// lockedBuffer is a buffer the loggers of several goroutines write.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestHarmlessGossipsubWarningsAreDebug: gossipsub's "error bumping
// delivery tag" (the connection manager's tag queue full in a burst) is
// passed on at debug, and only with WithPubSubDebug; its other warnings
// stay warnings.
func TestHarmlessGossipsubWarningsAreDebug(t *testing.T) {
	for _, on := range []bool{false, true} {
		var buf lockedBuffer
		n := &Node{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), pubsubDebug: on}
		l := n.pubsubLogger()
		l.Warn("error bumping delivery tag", "err", "queue full (len=128)")
		l.Warn("slow heartbeat", "took", "150ms")
		out := buf.String()
		if !strings.Contains(out, "level=WARN msg=\"slow heartbeat\"") {
			t.Errorf("WithPubSubDebug(%v): another warning is not a warning:\n%s", on, out)
		}
		if strings.Contains(out, "level=WARN msg=\"error bumping") {
			t.Errorf("WithPubSubDebug(%v): the tag warning stayed a warning:\n%s", on, out)
		}
		if got := strings.Contains(out, "level=DEBUG msg=\"error bumping"); got != on {
			t.Errorf("WithPubSubDebug(%v): the tag line at debug: %v\n%s", on, got, out)
		}
	}
}
