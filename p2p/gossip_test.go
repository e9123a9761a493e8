package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestTwoHostsExchangeMessages(t *testing.T) {
	for _, tc := range []struct {
		name   string
		listen string
	}{
		{"tcp4", tcp4},
		{"quic4", quic4},
		{"tcp6", tcp6},
		{"quic6", quic6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.listen == tcp6 || tc.listen == quic6 {
				requireIPv6Loopback(t)
			}
			a := startNode(t, nil, WithListenAddrs(tc.listen))
			b := startNode(t, nil, WithListenAddrs(tc.listen))
			connect(t, a, b)
			ta, tb := join(t, a, "group", nil), join(t, b, "group", nil)
			ina, inb := collect(t, ta), collect(t, tb)
			waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })

			ctx := context.Background()
			if err := ta.Publish(ctx, []byte("hello from a")); err != nil {
				t.Fatal(err)
			}
			if err := tb.Publish(ctx, []byte("hello from b")); err != nil {
				t.Fatal(err)
			}
			eventually(t, waitShort, "both messages", func() bool {
				return inb.has("hello from a") && ina.has("hello from b")
			})
			m := inb.msgs[0]
			if m.Author != a.ID() || m.ReceivedFrom != a.ID() || m.Topic != "group" {
				t.Errorf("got author %s from %s on %q, want %s on group", m.Author, m.ReceivedFrom, m.Topic, a.ID())
			}
			if got, want := m.ID, computeMessageID("group", []byte("hello from a")); got != want {
				t.Errorf("got message ID %s, want %s", got, want)
			}
			if got := ina.payloads(); len(got) != 1 {
				t.Errorf("a got %q, want only b's message (never its own)", got)
			}
		})
	}
}

func requireIPv6Loopback(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("IPv6 loopback unavailable: %v", err)
	}
	l.Close()
}

func TestTwentyHostsAllReceiveEveryMessage(t *testing.T) {
	const count = 20
	nodes := startNodes(t, count)
	// A ring with chords: every node dials the next three, so messages
	// must be relayed through the mesh.
	for i := range nodes {
		for d := 1; d <= 3; d++ {
			connect(t, nodes[i], nodes[(i+d)%count])
		}
	}
	topics := make([]*Topic, count)
	inboxes := make([]*inbox, count)
	for i, n := range nodes {
		topics[i] = join(t, n, "big-group", nil)
		inboxes[i] = collect(t, topics[i])
	}
	waitTopicPeers(t, topics, func(int) int { return 6 })
	warmUp(t, topics, inboxes)

	ctx := context.Background()
	for i, tp := range topics {
		if err := tp.Publish(ctx, fmt.Appendf(nil, "message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, waitLong, "every message at every host", func() bool {
		for i, in := range inboxes {
			for j := range count {
				if i != j && !in.has(fmt.Sprintf("message %d", j)) {
					return false
				}
			}
		}
		return true
	})
	for i, n := range nodes {
		if s := n.Stats(); s.Dropped() != 0 || s.Rejected != 0 {
			t.Errorf("node %d: %+v, want no drops or rejections", i, s)
		}
	}
}

func TestHostOutsideTopicReceivesNothing(t *testing.T) {
	nodes := startNodes(t, 3)
	a, b, outsider := nodes[0], nodes[1], nodes[2]
	connect(t, a, b)
	connect(t, outsider, a)
	connect(t, outsider, b)
	ta, tb := join(t, a, "members-only", nil), join(t, b, "members-only", nil)
	other := join(t, outsider, "another-group", nil)
	inb, inOther := collect(t, tb), collect(t, other)
	waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })

	if err := ta.Publish(context.Background(), []byte("secret-ish")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "delivery to the member", func() bool { return inb.has("secret-ish") })
	// The outsider is connected to both members; pubsub would have sent it
	// the message by now if it were going to (flood publishing reaches
	// every topic peer immediately). It must have received no RPC carrying
	// it, so it neither delivered nor even validated it.
	if got := inOther.count(); got != 0 {
		t.Errorf("outsider delivered %d messages, want 0", got)
	}
	if s := outsider.Stats(); s.Delivered != 0 || s.Duplicates != 0 || s.Rejected != 0 {
		t.Errorf("outsider stats %+v, want nothing received", s)
	}
	for _, p := range ta.Peers() {
		if p == outsider.ID() {
			t.Errorf("outsider listed as a topic peer")
		}
	}
}

func TestFloodOfInvalidMessagesIsRejectedScoredNegativeAndPruned(t *testing.T) {
	victim := startNode(t, nil)
	attacker := startNode(t, nil)
	connect(t, attacker, victim)
	rejectBad := func(_ context.Context, _ peer.ID, payload []byte) ValidationResult {
		if bytes.HasPrefix(payload, []byte("bad")) {
			return Reject
		}
		return Accept
	}
	tv := join(t, victim, "group", rejectBad)
	ta := join(t, attacker, "group", nil) // the attacker's own node accepts its garbage
	inv := collect(t, tv)
	waitTopicPeers(t, []*Topic{tv, ta}, func(int) int { return 1 })

	if err := ta.Publish(context.Background(), []byte("good 0")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "a valid message first", func() bool { return inv.has("good 0") })
	eventually(t, waitShort, "the attacker in the victim's mesh", func() bool { return victim.Stats().MeshGrafts >= 1 })

	const flood = 50
	for i := range flood {
		if err := ta.Publish(context.Background(), fmt.Appendf(nil, "bad %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, waitLong, "rejections and a negative score", func() bool {
		score, ok := victim.PeerScore(attacker.ID())
		return ok && score < 0 && victim.Stats().Rejected > 0
	})
	score, _ := victim.PeerScore(attacker.ID())
	t.Logf("attacker score %.0f after %d rejections", score, victim.Stats().Rejected)
	for _, p := range inv.payloads() {
		if bytes.HasPrefix([]byte(p), []byte("bad")) {
			t.Fatalf("victim delivered invalid message %q", p)
		}
	}
	// A negative score prunes the attacker from the victim's mesh at the
	// next heartbeat.
	eventually(t, waitLong, "the attacker pruned from the mesh", func() bool {
		return victim.Stats().MeshPrunes >= 1
	})
	// A score this low is under the graylist threshold: the victim ignores
	// the attacker entirely, valid messages included.
	eventually(t, waitLong, "score under the graylist threshold", func() bool {
		s, _ := victim.PeerScore(attacker.ID())
		return s < graylistThreshold
	})
}

func TestIgnoredMessagesAreDroppedWithoutPenalty(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	connect(t, a, b)
	ignoreAll := func(context.Context, peer.ID, []byte) ValidationResult { return Ignore }
	ta, tb := join(t, a, "group", nil), join(t, b, "group", ignoreAll)
	inb := collect(t, tb)
	waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })
	for i := range 5 {
		if err := ta.Publish(context.Background(), fmt.Appendf(nil, "stale %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, waitShort, "five ignored", func() bool { return b.Stats().Ignored >= 5 })
	if inb.count() != 0 {
		t.Errorf("delivered %d ignored messages", inb.count())
	}
	eventually(t, waitShort, "a score sample", func() bool { _, ok := b.PeerScore(a.ID()); return ok })
	if s, _ := b.PeerScore(a.ID()); s < 0 {
		t.Errorf("score %v after ignored messages, want >= 0", s)
	}
}

func TestPublishRefusesPayloadOverGossipLimit(t *testing.T) {
	a := startNode(t, nil, WithGossipSizeLimit(1024))
	ta := join(t, a, "group", nil)
	err := ta.Publish(context.Background(), make([]byte, 1025))
	if !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("got %v, want ErrPayloadTooLarge", err)
	}
	if err := ta.Publish(context.Background(), make([]byte, 1024)); err != nil {
		t.Fatalf("payload at the limit: %v", err)
	}
}

func TestOversizeGossipFromPeerIsRejected(t *testing.T) {
	big := startNode(t, nil, WithGossipSizeLimit(4096))
	small := startNode(t, nil, WithGossipSizeLimit(1024))
	connect(t, big, small)
	tbig, tsmall := join(t, big, "group", nil), join(t, small, "group", nil)
	in := collect(t, tsmall)
	waitTopicPeers(t, []*Topic{tbig, tsmall}, func(int) int { return 1 })
	if err := tbig.Publish(context.Background(), bytes.Repeat([]byte{'x'}, 2048)); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "rejection", func() bool { return small.Stats().Rejected == 1 })
	if in.count() != 0 {
		t.Errorf("delivered an oversize payload")
	}
}

func TestMessageIDDependsOnTopicAndPayloadOnly(t *testing.T) {
	a, b := newKey(t), newKey(t)
	ida, _ := peer.IDFromPrivateKey(a)
	idb, _ := peer.IDFromPrivateKey(b)
	one := messageID(&pb.Message{Topic: new("g"), Data: []byte("same"), From: []byte(ida), Seqno: []byte{1}})
	two := messageID(&pb.Message{Topic: new("g"), Data: []byte("same"), From: []byte(idb), Seqno: []byte{9}})
	if one != two {
		t.Errorf("same payload from two authors has two IDs")
	}
	if messageID(&pb.Message{Topic: new("h"), Data: []byte("same")}) == one {
		t.Errorf("same payload on two topics has one ID")
	}
	if messageID(&pb.Message{Topic: new("g"), Data: []byte("other")}) == one {
		t.Errorf("two payloads have one ID")
	}
}

func TestSamePayloadRepublishedIsDeliveredOnce(t *testing.T) {
	nodes := startNodes(t, 3)
	connect(t, nodes[0], nodes[2])
	connect(t, nodes[1], nodes[2])
	t0, t1, t2 := join(t, nodes[0], "g", nil), join(t, nodes[1], "g", nil), join(t, nodes[2], "g", nil)
	in := collect(t, t2)
	waitTopicPeers(t, []*Topic{t0, t1, t2}, func(i int) int { return []int{1, 1, 2}[i] })
	ctx := context.Background()
	if err := t0.Publish(ctx, []byte("same")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "first copy", func() bool { return in.count() == 1 })
	// Node 1 publishes the same payload under its own signature, then a
	// marker. The copy is a duplicate wherever it goes.
	for _, p := range []string{"same", "marker"} {
		if err := t1.Publish(ctx, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, waitShort, "marker", func() bool { return in.has("marker") })
	if got := in.payloads(); len(got) != 2 {
		t.Errorf("delivered %q, want same and marker once each", got)
	}
}

func TestSlowReaderDropsAreCounted(t *testing.T) {
	small := QueueSizes{Outbound: 512, Validation: 1024, Subscription: 1}
	a, b := startNode(t, nil), startNode(t, nil, WithQueueSizes(small))
	connect(t, a, b)
	ta, tb := join(t, a, "g", nil), join(t, b, "g", nil) // b never reads
	waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })
	for i := range 20 {
		if err := ta.Publish(context.Background(), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, waitShort, "subscription drops", func() bool {
		s := b.Stats()
		return s.Delivered == 20 && s.SubscriptionDropped >= 18
	})
	if got := b.Stats().Dropped(); got < 18 {
		t.Errorf("Dropped() = %d, want >= 18", got)
	}
}

func TestEventsReportPeersAndTopicPeers(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	evs, stop, err := a.Events(64)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	connect(t, a, b)
	ta := join(t, a, "g", nil)
	tb := join(t, b, "g", nil)
	want := []Event{
		{Type: EventPeerConnected, Peer: b.ID()},
		{Type: EventTopicPeerJoined, Peer: b.ID(), Topic: "g"},
	}
	expectEvents(t, evs, want)
	_ = ta
	if err := tb.Leave(); err != nil {
		t.Fatal(err)
	}
	expectEvents(t, evs, []Event{{Type: EventTopicPeerLeft, Peer: b.ID(), Topic: "g"}})
	b.Close()
	expectEvents(t, evs, []Event{{Type: EventPeerDisconnected, Peer: b.ID()}})
}

// expectEvents waits until every wanted event has been seen, in any order.
func expectEvents(t *testing.T, evs <-chan Event, want []Event) {
	t.Helper()
	pending := make(map[Event]bool, len(want))
	for _, w := range want {
		pending[w] = true
	}
	timeout := time.After(waitShort)
	for len(pending) > 0 {
		select {
		case ev, ok := <-evs:
			if !ok {
				t.Fatalf("events closed with %v pending", pending)
			}
			delete(pending, ev)
		case <-timeout:
			t.Fatalf("timed out waiting for events %v", pending)
		}
	}
}

func TestJoinTwiceFails(t *testing.T) {
	a := startNode(t, nil)
	join(t, a, "g", nil)
	if _, err := a.Join("g", nil); !errors.Is(err, ErrTopicJoined) {
		t.Fatalf("got %v, want ErrTopicJoined", err)
	}
}

func TestLeftTopicRefusesPublishAndNext(t *testing.T) {
	a := startNode(t, nil)
	ta := join(t, a, "g", nil)
	if err := ta.Leave(); err != nil {
		t.Fatal(err)
	}
	if err := ta.Publish(context.Background(), []byte("x")); !errors.Is(err, ErrTopicClosed) {
		t.Errorf("Publish: got %v, want ErrTopicClosed", err)
	}
	if _, err := ta.Next(context.Background()); !errors.Is(err, ErrTopicClosed) {
		t.Errorf("Next: got %v, want ErrTopicClosed", err)
	}
	join(t, a, "g", nil) // may rejoin
}

// warnings is a slog handler that keeps the messages of WARN and above.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	w.msgs = append(w.msgs, msg)
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

// TestRejoinedTopicKeepsItsDeliveryTag: a node that leaves a topic and
// joins it again at once (a member removed and invited back) gets its
// messages, and gossipsub's connection-manager tag for the topic works:
// pubsub closes the old tag asynchronously, and a Join before that is
// done found the name taken ("unable to create decaying delivery tag"),
// then warned for every message delivered ("no decaying tag registered"),
// for the life of the node.
func TestRejoinedTopicKeepsItsDeliveryTag(t *testing.T) {
	w := &warnings{}
	a := startNode(t, nil, WithLogger(slog.New(w)))
	b := startNode(t, nil)
	connect(t, a, b)
	tb := join(t, b, "g", nil)
	for range 3 {
		if err := join(t, a, "g", nil).Leave(); err != nil {
			t.Fatal(err)
		}
	}
	ta := join(t, a, "g", nil)
	eventually(t, waitShort, "b in a's mesh", func() bool { return len(ta.Peers()) == 1 })
	for i := range 5 {
		if err := tb.Publish(context.Background(), fmt.Appendf(nil, "m%d", i)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		_, err := ta.Next(ctx)
		cancel()
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, m := range w.msgs {
		if strings.Contains(m, "decaying") {
			t.Errorf("warning: %s", m)
		}
	}
}
