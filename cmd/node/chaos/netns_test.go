package chaos

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// network is a bridge and one network namespace per daemon, all made by
// the test. The bridge lives in a namespace of its own (the hub), so the
// test adds nothing to the root namespace: each daemon's namespace has
// eth0 with 10.77.0.(i+1)/24, its peer vI is a port of the hub's bridge,
// and a partition sets vI down.
type network struct {
	hub   string   // the hub namespace, holding br0
	nodes []string // one namespace per daemon
	addrs []string // the daemons' IPv4 addresses
}

// newNetwork makes the hub and n namespaces, named after prefix (which
// carries the test's pid, so that parallel runs do not collide). It skips
// the test when namespaces cannot be made, and removes everything it made
// when the test ends, whatever the outcome.
func newNetwork(t *testing.T, prefix string, n int) *network {
	t.Helper()
	nw := &network{hub: prefix + "-hub"}
	if out, err := exec.Command("ip", "netns", "add", nw.hub).CombinedOutput(); err != nil {
		t.Skipf("the chaos test needs network namespaces: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { nw.remove(nw.hub) })
	nw.run(t, "-n", nw.hub, "link", "set", "lo", "up")
	nw.run(t, "-n", nw.hub, "link", "add", "br0", "type", "bridge")
	nw.run(t, "-n", nw.hub, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%s-n%d", prefix, i)
		addr := fmt.Sprintf("10.77.0.%d", i+1)
		nw.run(t, "netns", "add", ns)
		t.Cleanup(func() { nw.remove(ns) })
		nw.nodes = append(nw.nodes, ns)
		nw.addrs = append(nw.addrs, addr)
		port := fmt.Sprintf("v%d", i)
		nw.run(t, "-n", nw.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		nw.run(t, "-n", nw.hub, "link", "set", port, "master", "br0")
		nw.run(t, "-n", nw.hub, "link", "set", port, "up")
		nw.run(t, "-n", ns, "link", "set", "lo", "up")
		nw.run(t, "-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
		nw.run(t, "-n", ns, "link", "set", "eth0", "up")
	}
	return nw
}

// setLink sets node i's link to the bridge up or down.
func (nw *network) setLink(t *testing.T, i int, up bool) {
	t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	nw.run(t, "-n", nw.hub, "link", "set", fmt.Sprintf("v%d", i), state)
}

func (nw *network) run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// remove deletes a namespace; its interfaces (and their veth peers) go
// with it.
func (nw *network) remove(ns string) {
	if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "chaos: ip netns del %s: %v: %s\n", ns, err, bytes.TrimSpace(out))
	}
}
