package node

import (
	"net"
	"slices"
	"strings"
	"testing"
)

// tcpAddrs are the TCP addresses n listens on.
func tcpAddrs(n *Node) []string {
	return slices.DeleteFunc(listenAddrs(n), func(a string) bool { return !strings.Contains(a, "/tcp/") })
}

// TestNodeListensWhereItsLastRunDid: a node started with listen
// addresses, then again without, listens on the same addresses and
// ports; with those ports taken, on the same addresses with new ports.
func TestNodeListensWhereItsLastRunDid(t *testing.T) {
	n, dir := testNodeIn(t, "alice") // on /ip4/127.0.0.1/tcp/0
	first := tcpAddrs(n)
	if len(first) != 1 {
		t.Fatalf("listening on %v, want one address", first)
	}
	n.Close()
	n = openTestNodeAt(t, dir) // no listen addresses given
	if again := tcpAddrs(n); !slices.Equal(again, first) {
		t.Errorf("listening on %v after a restart without --listen, want %v as the last run", again, first)
	}
	n.Close()

	// Its port taken by something else: the same address, a new port.
	port := first[0][len("/ip4/127.0.0.1/tcp/"):]
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Skipf("cannot hold the port %s: %v", port, err)
	}
	defer ln.Close()
	n = openTestNodeAt(t, dir)
	moved := tcpAddrs(n)
	if len(moved) != 1 || moved[0] == first[0] || moved[0][:len("/ip4/127.0.0.1/tcp/")] != "/ip4/127.0.0.1/tcp/" {
		t.Errorf("listening on %v with the port of %v taken, want 127.0.0.1 on another port", moved, first)
	}
}

func TestFreshPortsKeepsTheAddresses(t *testing.T) {
	got := freshPorts([]string{"/ip4/10.0.0.1/tcp/4001", "/ip6/::/udp/4001/quic-v1", "/ip4/0.0.0.0/tcp/0"})
	want := []string{"/ip4/10.0.0.1/tcp/0", "/ip6/::/udp/0/quic-v1", "/ip4/0.0.0.0/tcp/0"}
	if !slices.Equal(got, want) {
		t.Errorf("freshPorts = %v, want %v", got, want)
	}
}
