package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Test deadlines are generous: the race detector slows libp2p 5-10x and
// the machine has two cores.
const (
	waitLong  = 60 * time.Second
	waitShort = 20 * time.Second
)

var (
	tcp4  = "/ip4/127.0.0.1/tcp/0"
	quic4 = "/ip4/127.0.0.1/udp/0/quic-v1"
	tcp6  = "/ip6/::1/tcp/0"
	quic6 = "/ip6/::1/udp/0/quic-v1"
)

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testLogger logs to stderr when PARLEY_P2P_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("PARLEY_P2P_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testOptions keep a node on loopback: no mDNS, no DHT unless asked.
func testOptions(listen ...string) []Option {
	if len(listen) == 0 {
		listen = []string{tcp4}
	}
	return []Option{
		WithListenAddrs(listen...),
		WithMDNS(false),
		WithDHT(DHTOff),
		WithScoreInspectInterval(200 * time.Millisecond),
	}
}

// startNode starts a node on loopback and closes it at the end of the test.
func startNode(t testing.TB, key crypto.PrivKey, opts ...Option) *Node {
	t.Helper()
	if key == nil {
		key = newKey(t)
	}
	id, _ := peer.IDFromPrivateKey(key)
	opts = append([]Option{WithLogger(testLogger().With("node", id.String()[len(id.String())-6:]))}, opts...)
	n, err := New(key, append(testOptions(), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func startNodes(t testing.TB, count int, opts ...Option) []*Node {
	t.Helper()
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = startNode(t, nil, opts...)
	}
	return nodes
}

func connect(t testing.TB, a, b *Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := a.Connect(ctx, b.AddrInfo()); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every few milliseconds until it holds or the
// timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		<-tick.C
	}
}

func join(t testing.TB, n *Node, topic string, v Validator) *Topic {
	t.Helper()
	tp, err := n.Join(topic, v)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// inbox collects the messages a topic delivers, in a goroutine that ends
// with the test.
type inbox struct {
	mu   sync.Mutex
	msgs []Message
}

func collect(t testing.TB, tp *Topic) *inbox {
	in := &inbox{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			m, err := tp.Next(ctx)
			if err != nil {
				return
			}
			in.mu.Lock()
			in.msgs = append(in.msgs, m)
			in.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return in
}

func (in *inbox) payloads() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]string, len(in.msgs))
	for i, m := range in.msgs {
		out[i] = string(m.Payload)
	}
	return out
}

func (in *inbox) has(payload string) bool {
	return slices.Contains(in.payloads(), payload)
}

func (in *inbox) count() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.msgs)
}

// waitTopicPeers waits until every node sees at least want peers on its
// topic.
func waitTopicPeers(t testing.TB, topics []*Topic, want func(i int) int) {
	t.Helper()
	eventually(t, waitLong, "topic peers", func() bool {
		for i, tp := range topics {
			if len(tp.Peers()) < want(i) {
				return false
			}
		}
		return true
	})
}

// warmUp publishes from topics[0] until every other topic has delivered one
// warm-up message, which shows the mesh carries messages end to end.
func warmUp(t testing.TB, topics []*Topic, inboxes []*inbox) {
	t.Helper()
	ctx := context.Background()
	i := 0
	last := time.Time{}
	eventually(t, waitLong, "warm-up message everywhere", func() bool {
		if time.Since(last) > time.Second {
			i++
			last = time.Now()
			if err := topics[0].Publish(ctx, fmt.Appendf(nil, "warm-up %d", i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, in := range inboxes[1:] {
			if in.count() == 0 {
				return false
			}
		}
		return true
	})
}

func ids(nodes []*Node) []peer.ID {
	out := make([]peer.ID, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID()
	}
	return out
}

func key2id(t testing.TB, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
