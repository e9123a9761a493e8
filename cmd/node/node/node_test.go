package node

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// testNode makes and opens a node in a temp directory, on loopback.
func testNode(t testing.TB, name string) *Node {
	t.Helper()
	n, _ := testNodeIn(t, name)
	return n
}

// testNodeIn is testNode that also returns the node's data directory,
// for a test that closes and opens the node again.
func testNodeIn(t testing.TB, name string) (*Node, string) {
	t.Helper()
	dir := t.TempDir()
	if _, err := Init(dir, name, nil, nil); err != nil {
		t.Fatal(err)
	}
	n := openTestNode(t, dir)
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		t.Logf("%s is peer %s", name, n.p2p.Host().ID().ShortString())
	}
	return n, dir
}

// pairIn makes alice and bob, contacts of each other, and a group named
// name that alice created and bob joined.
func pairIn(t testing.TB, name string) (alice, bob *Node) {
	t.Helper()
	alice, bob, _ = pairInDir(t, name)
	return alice, bob
}

// pairInDir is pairIn that also returns bob's data directory, for a test
// that closes bob and opens him again.
func pairInDir(t testing.TB, name string) (alice, bob *Node, bobDir string) {
	t.Helper()
	ctx := context.Background()
	alice = testNode(t, "alice")
	bob, bobDir = testNodeIn(t, "bob")
	befriend(t, alice, bob)
	if _, err := alice.CreateGroup(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := alice.Invite(ctx, name, "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob in", func() bool { return groupOf(t, bob, name).Members == 2 })
	return alice, bob, bobDir
}

func openTestNode(t testing.TB, dir string) *Node {
	t.Helper()
	return openTestNodeAt(t, dir, "/ip4/127.0.0.1/tcp/0")
}

// openTestNodeAt opens a node listening on the given addresses (a node
// coming back on its usual port).
func openTestNodeAt(t testing.TB, dir string, listen ...string) *Node {
	t.Helper()
	var log *slog.Logger
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	n, err := Open(context.Background(), Config{
		Dir: dir, Listen: listen, Logger: log,
		TickInterval: 50 * time.Millisecond, UpdateInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func texts(t testing.TB, n *Node, group string) []string {
	t.Helper()
	msgs, err := n.Read(context.Background(), group, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, m.Sender+": "+m.Text)
	}
	return out
}

// befriend adds b as a contact of a.
func befriend(t testing.TB, a, b *Node) {
	t.Helper()
	ctx := context.Background()
	code, err := b.ContactCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddContact(ctx, code, ""); err != nil {
		t.Fatal(err)
	}
}

func TestThreeNodesFormAGroupAndTalk(t *testing.T) {
	ctx := context.Background()
	alice, bob, carol := testNode(t, "alice"), testNode(t, "bob"), testNode(t, "carol")
	befriend(t, alice, bob)
	befriend(t, alice, carol)
	g, err := alice.CreateGroup(ctx, "friends")
	if err != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"bob", "carol"} {
		if err := alice.Invite(ctx, "friends", who); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{bob, carol} {
		eventually(t, 20*time.Second, n.id.Name+" in the group with 3 members", func() bool {
			gs, _ := n.Groups(ctx)
			return len(gs) == 1 && gs[0].ID == g.ID && gs[0].Members == 3
		})
	}
	for i, n := range []*Node{alice, bob, carol} {
		if _, err := n.Send(ctx, "friends", fmt.Sprintf("hello %d from %s", i, n.id.Name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []*Node{alice, bob, carol} {
		eventually(t, 20*time.Second, n.id.Name+" has the 3 messages", func() bool {
			return len(texts(t, n, "friends")) == 3
		})
	}
	members, err := bob.Members(ctx, "friends")
	if err != nil || len(members) != 3 {
		t.Fatalf("members: %v %v", members, err)
	}
	t.Logf("bob sees %v", texts(t, bob, "friends"))
	_ = api.ErrNotFound
}

// listenAddrs returns the addresses a node listens on, to reopen it there.
func listenAddrs(n *Node) []string {
	var out []string
	for _, a := range n.p2p.Host().Network().ListenAddresses() {
		out = append(out, a.String())
	}
	return out
}

func TestMetricsEndpointServesTheFigures(t *testing.T) {
	ctx := context.Background()
	alice, bob := pairIn(t, "m")
	if _, err := alice.Send(ctx, "m", "count me"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "bob has it", func() bool { return len(texts(t, bob, "m")) == 1 })
	rec := httptest.NewRecorder()
	bob.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"parley_groups 1", "parley_peers 1", "parley_delivery_latency_seconds_count 1", "# TYPE parley_messages_in_total counter",
		`parley_group_members{group="m",id="` + groupOf(t, bob, "m").ID[:8] + `"} 2`, `parley_group_state{group="m",id="` + groupOf(t, bob, "m").ID[:8] + `",state="ok"} 1`,
		"# TYPE go_goroutines gauge", "process_resident_memory_bytes "} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
	// libp2p's swarm and resource manager, and gossipsub as p2p counts
	// it: bob has a connection, streams, and alice's message delivered.
	for _, name := range []string{"libp2p_swarm_connections_opened_total", "libp2p_rcmgr_connections", "libp2p_rcmgr_streams",
		"parley_gossipsub_messages_delivered_total", "parley_gossipsub_peers", "parley_gossipsub_topics", "parley_gossipsub_rpcs_total"} {
		if got := scraped(body, name); got <= 0 {
			t.Errorf("%s sums to %v in the scrape, want more than 0", name, got)
		}
	}
}

// scraped sums the values of a metric's series in a scrape (text format).
func scraped(body, name string) float64 {
	var total float64
	for line := range strings.Lines(body) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // another metric whose name starts with this one
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(fields[0], 64); err == nil {
			total += v
		}
	}
	return total
}

// TestHistoryResultNamesTheFinalEpoch: a history record's result says it
// is final, and since final marks carry it, the canonical epoch it is
// final in; records written before ("f" alone) keep their own epoch.
func TestHistoryResultNamesTheFinalEpoch(t *testing.T) {
	for _, c := range []struct {
		res          string
		final, hasEp bool
		epoch        uint64
	}{
		{"", false, false, 0},
		{"f", true, false, 0},
		{string(finalResult(6)), true, true, 6},
		{"f18446744073709551615", true, true, 1<<64 - 1},
		{"x7", false, false, 0},
		{"f7x", true, false, 0},
	} {
		final, epoch, ok := readResult([]byte(c.res))
		if final != c.final || ok != c.hasEp || (ok && epoch != c.epoch) {
			t.Errorf("readResult(%q) = %v, %d, %v; want %v, %d, %v", c.res, final, epoch, ok, c.final, c.epoch, c.hasEp)
		}
	}
}

// TestFingerprintIsTheIteratedHash: the safety number is the iterated
// SHA-512 it always was, computed or remembered.
func TestFingerprintIsTheIteratedHash(t *testing.T) {
	reference := func(key []byte) string {
		h := append([]byte("parley fingerprint v1\x00"), key...)
		for range 1024 {
			s := sha512.Sum512(append(h, key...))
			h = s[:]
		}
		var b strings.Builder
		for i := range 6 {
			if i > 0 {
				b.WriteByte(' ')
			}
			fmt.Fprintf(&b, "%05d", binary.BigEndian.Uint64(append([]byte{0, 0, 0}, h[5*i:5*i+5]...))%100000)
		}
		return b.String()
	}
	for i := range 5 {
		key := bytes.Repeat([]byte{byte(i)}, 32)
		want := reference(key)
		for round := range 2 { // computed, then remembered
			if got := Fingerprint(key); got != want {
				t.Errorf("key %d, round %d: %s, want %s", i, round, got, want)
			}
		}
	}
}
