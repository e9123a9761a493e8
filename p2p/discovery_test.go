package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRendezvousNamespaceIsDomainSeparated(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	ns := RendezvousNamespace(secret)
	if ns != RendezvousNamespace(secret) {
		t.Fatal("namespace is not deterministic")
	}
	if ns == RendezvousNamespace(append([]byte{}, "0123456789abcdef0123456789abcdeF"...)) {
		t.Error("two secrets give one namespace")
	}
	if strings.Contains(ns, fmt.Sprintf("%x", secret)) || strings.Contains(ns, string(secret)) {
		t.Error("namespace reveals the secret")
	}
	if !strings.HasPrefix(ns, "parley/rdv/") || len(ns) != len("parley/rdv/")+64 {
		t.Errorf("namespace %q, want parley/rdv/ and 64 hex digits", ns)
	}
}

func TestRendezvousNeedsDHTAndASecret(t *testing.T) {
	a := startNode(t, nil)
	if _, err := a.Rendezvous(context.Background(), make([]byte, 32)); !errors.Is(err, ErrNoDHT) {
		t.Errorf("got %v, want ErrNoDHT", err)
	}
	b := startNode(t, nil, WithDHT(DHTClient))
	if _, err := b.Rendezvous(context.Background(), []byte("short")); !errors.Is(err, ErrBadOption) {
		t.Errorf("got %v, want ErrBadOption", err)
	}
}

// TestDHTRendezvousFindsGroupMembers runs a Parley DHT on loopback: one
// server that both members bootstrap from, and DHT clients (which servers
// never hand out as peers), so the only way the members can meet is the
// group's rendezvous record.
func TestDHTRendezvousFindsGroupMembers(t *testing.T) {
	server := startNode(t, nil, WithDHT(DHTServer))
	opts := []Option{
		WithDHT(DHTClient),
		WithBootstrapPeers(server.AddrInfo()),
		WithRendezvousInterval(time.Second),
	}
	m1, m2, other := startNode(t, nil, opts...), startNode(t, nil, opts...), startNode(t, nil, opts...)
	eventually(t, waitShort, "bootstrap connections", func() bool {
		return m1.Connected(server.ID()) && m2.Connected(server.ID()) && other.Connected(server.ID())
	})
	group := []byte("group secret: 32 bytes of it....")
	ctx := context.Background()
	for _, n := range []*Node{m1, m2} {
		stop, err := n.Rendezvous(ctx, group)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(stop)
	}
	stop, err := other.Rendezvous(ctx, []byte("another group's secret, 32 bytes"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	eventually(t, waitLong, "members to find each other", func() bool {
		return m1.Connected(m2.ID()) && m2.Connected(m1.ID())
	})
	for _, m := range []*Node{m1, m2} {
		if other.Connected(m.ID()) {
			t.Errorf("a node of another group connected to member %s", m.ID())
		}
	}
}

// mDNS needs multicast, which the loopback interface does not carry, so the
// test puts two nodes in two network namespaces joined by a veth pair.
// The addresses are from 198.18.0.0/15 (set aside for benchmarking) and
// exist only inside the namespaces the test creates.
const mdnsHelperEnv = "PARLEY_P2P_MDNS_HELPER"

func TestMDNSFindsPeerAcrossNetworkNamespaces(t *testing.T) {
	if os.Getenv(mdnsHelperEnv) != "" {
		t.Skip("inside the helper process")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: creating network namespaces and veth pairs needs root")
	}
	ipBin, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("skipped: the ip tool (iproute2) is not installed")
	}
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	nsA, nsB := "parley-mdns-a-"+suffix, "parley-mdns-b-"+suffix
	vethA, vethB := "pmda"+suffix, "pmdb"+suffix
	ip := func(args ...string) error {
		out, err := exec.Command(ipBin, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	if err := ip("netns", "add", nsA); err != nil {
		t.Skipf("skipped: cannot create a network namespace here: %v", err)
	}
	t.Cleanup(func() { ip("netns", "del", nsA) })
	if err := ip("netns", "add", nsB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ip("netns", "del", nsB) })
	for _, args := range [][]string{
		{"link", "add", vethA, "type", "veth", "peer", "name", vethB},
		{"link", "set", vethA, "netns", nsA},
		{"link", "set", vethB, "netns", nsB},
		{"-n", nsA, "addr", "add", "198.18.0.1/24", "dev", vethA},
		{"-n", nsB, "addr", "add", "198.18.0.2/24", "dev", vethB},
		{"-n", nsA, "link", "set", vethA, "up"},
		{"-n", nsB, "link", "set", vethB, "up"},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Skipf("skipped: cannot set up the veth pair: %v", err)
		}
	}

	a := startHelper(t, ipBin, nsA)
	b := startHelper(t, ipBin, nsB)
	idA, idB := a.waitLine(t, "ID "), b.waitLine(t, "ID ")
	a.waitLine(t, "CONNECTED "+idB)
	b.waitLine(t, "CONNECTED "+idA)
}

// TestMDNSHelperProcess is the node run inside a namespace by
// TestMDNSFindsPeerAcrossNetworkNamespaces; on its own it skips.
func TestMDNSHelperProcess(t *testing.T) {
	if os.Getenv(mdnsHelperEnv) == "" {
		t.Skip("helper for TestMDNSFindsPeerAcrossNetworkNamespaces")
	}
	n, err := New(newKey(t),
		WithListenAddrs("/ip4/0.0.0.0/tcp/0"),
		WithDHT(DHTOff),
		WithMDNS(true),
		WithMDNSServiceName("_parley-test._udp"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	evs, stop, err := n.Events(16)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	fmt.Printf("ID %s\n", n.ID())
	stdinClosed := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	deadline := time.After(waitLong)
	for {
		select {
		case ev := <-evs:
			if ev.Type == EventPeerConnected {
				fmt.Printf("CONNECTED %s\n", ev.Peer)
			}
		case <-stdinClosed:
			return
		case <-deadline:
			return
		}
	}
}

type helper struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{}
}

func startHelper(t *testing.T, ipBin, ns string) *helper {
	t.Helper()
	cmd := exec.Command(ipBin, "netns", "exec", ns, os.Args[0], "-test.run=^TestMDNSHelperProcess$")
	cmd.Env = append(os.Environ(), mdnsHelperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.mu.Lock()
			h.lines = append(h.lines, sc.Text())
			h.mu.Unlock()
			select {
			case h.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		<-done
		cmd.Wait()
	})
	return h
}

// waitLine waits for a line starting with prefix and returns the rest.
func (h *helper) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	timeout := time.After(waitLong)
	for {
		h.mu.Lock()
		for _, l := range h.lines {
			if strings.HasPrefix(l, prefix) {
				h.mu.Unlock()
				return strings.TrimPrefix(l, prefix)
			}
		}
		lines := append([]string(nil), h.lines...)
		h.mu.Unlock()
		select {
		case <-h.more:
		case <-timeout:
			t.Fatalf("timed out waiting for %q; helper said %q", prefix, lines)
		}
	}
}
