package chaos

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestLANMeshWithoutConfiguration: daemons on one LAN (namespaces on a
// bridge) started with nothing but their data directories (no bootstrap
// peer, no listen address, no contacts) find each other by mDNS, then
// form a group and talk. Each daemon's peer count reaching the others
// before any contact is added is mDNS's doing: nothing else told them of
// each other. Run as root, like TestChaos:
//
//	sudo PARLEY_CHAOS=1 go test -run TestLANMeshWithoutConfiguration -v ./cmd/node/chaos/
func TestLANMeshWithoutConfiguration(t *testing.T) {
	skipUnlessChaos(t, "LAN test")
	const n = 4
	work := t.TempDir()
	nw := newNetwork(t, fmt.Sprintf("parley-lan-%d", os.Getpid()), n)
	bin := parleyBinary(t, work)
	var ds []*daemon
	for i := range n {
		d := newDaemon(t, bin, work, nodeName(i), nw.nodes[i], nw.addrs[i])
		d.listen, d.mdns = "", true
		if err := d.start(); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	for _, d := range ds {
		if !waitUntil(60*time.Second, func() bool {
			st, err := d.status()
			return err == nil && st.Peers >= n-1
		}) {
			st, err := d.status()
			t.Fatalf("%s knows %d peers after 60s, want %d found by mDNS (%v); log %s", d.name, st.Peers, n-1, err, d.logPath)
		}
	}
	t.Logf("each of %d daemons found the %d others by mDNS", n, n-1)

	invite(ds[0], ds[1:])
	for _, d := range ds {
		if !waitUntil(60*time.Second, func() bool {
			g, err := d.group(group)
			return err == nil && g.Members == n && !g.Pending
		}) {
			t.Fatalf("%s not in %s with %d members after 60s; log %s", d.name, group, n, d.logPath)
		}
	}
	for _, d := range ds {
		d.must("send", group, "hello from "+d.name)
	}
	for _, d := range ds {
		if !waitUntil(30*time.Second, func() bool {
			ms, err := d.messages(group)
			return err == nil && len(ms) == n
		}) {
			ms, _ := d.messages(group)
			t.Fatalf("%s has %d of the %d hellos after 30s; log %s", d.name, len(ms), n, d.logPath)
		}
	}
	t.Logf("a group of %d formed on the LAN and every member has every hello", n)
}
