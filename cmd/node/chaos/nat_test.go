package chaos

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNATTraversal: members behind NATs of their own, and one member with
// a public address that offers a circuit relay (v2). Every member behind a
// NAT finds out from AutoNAT that it is private, reserves a slot on the
// relay, and reaches the other members behind NATs through it; where both
// NATs keep a mapping per source (endpoint-independent mapping) the
// relayed connection is upgraded to a direct one by hole punching
// (DCUtR), and with a symmetric NAT (a new port per destination) it stays
// relayed. The group works either way. Run as root, like TestChaos:
//
//	sudo PARLEY_CHAOS=1 go test -count=1 -run TestNATTraversal -v ./cmd/node/chaos/
//
// The topology, all of it in namespaces made by the test (nothing in the
// root namespace, no route out):
//
//	              public segment 11.77.0.0/24 (bridge br0 in the hub)
//	relay 11.77.0.1 ──┬──────────────┬──────────────┐
//	               router0 .11     router1 .12     router2 .13
//	               masquerade      masquerade      masquerade random,fully-random
//	               (port kept)     (port kept)     (symmetric)
//	                  │               │               │
//	192.168.1.0/24  eim0 .2  192.168.2.0/24 eim1 .2  192.168.3.0/24 sym2 .2
//
// The public segment uses a range outside RFC 1918 and the documentation
// ranges, because AutoNAT neither dials nor trusts private addresses. A
// router forwards what its member sends out and what answers it, and
// drops everything else that comes to its public side (no port
// forwarding; drops, not resets, as home routers do), so nobody can dial
// a member behind a NAT. Needs nft (Debian: apt-get install nftables).
//
// It checks that AutoNAT finds every member behind a NAT private (the
// relay's AutoNAT service fails to dial it back), that each then holds a
// relayed address, that AutoNAT v2 confirms the relay's public address
// and no address of a member behind a NAT, that the two members behind
// port-keeping NATs end directly connected (by DCUtR as a rule; the test
// logs when it was their simultaneous dials instead), that the member
// behind the symmetric NAT stays reached through the relay by both others
// ('parley members' says via which), that every member gets every
// member's message, and that the members behind NATs alone, in a group
// without the relay, get each other's messages too. The members reach
// the relay over QUIC, so the hole punches run over QUIC. About 30
// seconds.
func TestNATTraversal(t *testing.T) {
	skipUnlessChaos(t, "NAT test")
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("NAT test: needs nft (apt-get install nftables)")
	}
	start := time.Now()
	work := t.TempDir()
	t.Cleanup(func() { keepLogs(t, work) })
	nw := newNATNetwork(t, fmt.Sprintf("parley-nat-%d", os.Getpid()), []natKind{natPortKept, natPortKept, natSymmetric})
	bin := parleyBinary(t, work)
	listen := func(addr string) string {
		return fmt.Sprintf("/ip4/%s/tcp/4001,/ip4/%s/udp/4001/quic-v1", addr, addr)
	}
	relay := newDaemon(t, bin, work, "relay", nw.relayNS, nw.relayAddr)
	relay.listen = listen(nw.relayAddr)
	relay.flags = []string{"--relay-service"}
	if err := relay.start(); err != nil {
		t.Fatal(err)
	}
	var relayID struct {
		PeerID string `json:"peer_id"`
	}
	if err := relay.cliJSON(&relayID, "id"); err != nil {
		t.Fatal(err)
	}
	relayTCP := fmt.Sprintf("/ip4/%s/tcp/4001/p2p/%s", nw.relayAddr, relayID.PeerID)
	relayQUIC := fmt.Sprintf("/ip4/%s/udp/4001/quic-v1/p2p/%s", nw.relayAddr, relayID.PeerID)

	// The members behind the port-keeping NATs are told which relay to
	// use; the one behind the symmetric NAT only knows the relay as a
	// peer to connect to, and finds that it offers a relay.
	var nated []*daemon
	kind := map[*daemon]natKind{}
	for _, lan := range nw.lans {
		d := newDaemon(t, bin, work, lan.name, lan.memberNS, lan.memberAddr)
		d.listen = listen(lan.memberAddr)
		if lan.kind == natSymmetric {
			d.flags = []string{"--bootstrap", relayQUIC}
		} else {
			d.flags = []string{"--relay", relayTCP + "," + relayQUIC}
		}
		if err := d.start(); err != nil {
			t.Fatal(err)
		}
		nated = append(nated, d)
		kind[d] = lan.kind
	}

	// Contact codes given out at once carry only the members' private
	// addresses; a code given out later carries the relayed address too
	// (taken below, for the last member).
	codes := map[*daemon]string{}
	for _, d := range nated[:len(nated)-1] {
		codes[d] = strings.TrimSpace(d.must("id", "--code"))
	}
	// AutoNAT: the relay's AutoNAT service cannot dial a member back, so
	// each finds out that it is private, and then reserves a slot on the
	// relay: its addresses gain a /p2p-circuit one.
	for _, d := range nated {
		if !waitUntil(60*time.Second, func() bool { return d.logHas(reachabilityLine, "private") }) {
			t.Fatalf("%s: AutoNAT did not find it private within 60s (it says %q); log %s", d.name, d.logLast(reachabilityLine), d.logPath)
		}
		if !waitUntil(30*time.Second, func() bool { return len(d.relayAddrs()) > 0 }) {
			t.Fatalf("%s has no relayed address 30s after AutoNAT found it private; log %s", d.name, d.logPath)
		}
		t.Logf("%s: AutoNAT says private; relayed at %s (+%.1fs)", d.name, d.relayAddrs()[0], time.Since(start).Seconds())
		// parley status tells the user as much.
		if st, err := d.status(); err != nil || st.Reachability != "private" || len(st.RelayAddrs) == 0 {
			t.Errorf("%s's status: reachability %q, relayed addresses %v (%v); want private, with its relayed address", d.name, st.Reachability, st.RelayAddrs, err)
		}
	}
	last := nated[len(nated)-1]
	codes[last] = strings.TrimSpace(last.must("id", "--code"))
	if got := relay.logLast(reachabilityLine); got != "public" { // by --relay-service
		t.Errorf("relay: AutoNAT reachability %q, want public", got)
	}

	// The relay is a member with a public address: it makes the group and
	// invites the first member behind a NAT, who invites the others from
	// their contact codes: its Welcomes go to them through the relay (to
	// an address in the code, or one that the relay tells as a member),
	// or directly once hole punching made a direct connection.
	inviter := nated[0]
	relay.must("contact", "add", codes[inviter])
	relay.must("group", "create", group)
	relay.must("invite", group, inviter.name)
	if !waitUntil(60*time.Second, func() bool {
		g, err := inviter.group(group)
		return err == nil && g.Members == 2 && !g.Pending
	}) {
		t.Fatalf("%s not in %s after 60s; log %s", inviter.name, group, inviter.logPath)
	}
	for _, d := range nated[1:] {
		inviter.must("contact", "add", codes[d])
		inviter.must("invite", group, d.name)
	}
	if !slices.ContainsFunc(inviter.contactAddrs(last), func(a string) bool { return strings.Contains(a, "/p2p-circuit") }) {
		t.Errorf("%s's contact code, given out once it had a relayed address, has only %q", last.name, inviter.contactAddrs(last))
	}
	all := append([]*daemon{relay}, nated...)
	for _, d := range all {
		if !waitUntil(60*time.Second, func() bool {
			g, err := d.group(group)
			return err == nil && g.Members == len(all) && !g.Pending
		}) {
			t.Fatalf("%s not in %s with %d members after 60s; log %s", d.name, group, len(all), d.logPath)
		}
	}
	t.Logf("group of %d formed (+%.1fs)", len(all), time.Since(start).Seconds())

	// Every pair of members behind NATs connects: through the relay, then
	// directly where both NATs keep ports.
	type pair struct{ a, b *daemon }
	var pairs []pair
	for i := range nated {
		for j := i + 1; j < len(nated); j++ {
			pairs = append(pairs, pair{nated[i], nated[j]})
		}
	}
	want := func(p pair) string {
		if kind[p.a] == natSymmetric || kind[p.b] == natSymmetric {
			return "relay"
		}
		return "direct"
	}
	for _, p := range pairs {
		w := want(p)
		if !waitUntil(45*time.Second, func() bool { return p.a.via(p.b) == w && p.b.via(p.a) == w }) {
			t.Errorf("%s and %s are connected %q and %q after 45s, want %q both ways; logs %s, %s",
				p.a.name, p.b.name, p.a.via(p.b), p.b.via(p.a), w, p.a.logPath, p.b.logPath)
			continue
		}
		t.Logf("%s <-> %s: %s (+%.1fs)", p.a.name, p.b.name, w, time.Since(start).Seconds())
	}
	// A direct connection between members behind NATs can only be made
	// by both sending first. DCUtR does that on a relayed connection (the
	// side that received it starts, and logs the outcome); so do two
	// members that dial each other's public address at the same moment
	// (Parley redials a group's members every 5 s, from the listening
	// port, and QUIC repeats its first packet for seconds), and when that
	// comes first DCUtR has nothing to do. Which one it was is logged.
	for _, p := range pairs {
		punched := p.a.holePunches(p.b, directLine) + p.b.holePunches(p.a, directLine)
		switch {
		case want(p) == "direct" && punched > 0:
			t.Logf("%s and %s: direct by DCUtR", p.a.name, p.b.name)
		case want(p) == "direct":
			t.Logf("%s and %s: direct, not by DCUtR: they dialled each other's public address at once", p.a.name, p.b.name)
		case want(p) == "relay" && punched > 0:
			t.Errorf("%s and %s logged a successful hole punch through a symmetric NAT", p.a.name, p.b.name)
		case want(p) == "relay":
			t.Logf("%s and %s: %d hole punches started, none made a direct connection", p.a.name, p.b.name,
				p.a.holePunches(p.b, punchStartLine)+p.b.holePunches(p.a, punchStartLine))
		}
	}

	for _, d := range all {
		d.must("send", group, "hello from "+d.name)
	}
	for _, d := range all {
		if !waitUntil(30*time.Second, func() bool {
			ms, err := d.messages(group)
			return err == nil && len(ms) == len(all)
		}) {
			ms, _ := d.messages(group)
			t.Fatalf("%s has %d of the %d hellos after 30s; log %s", d.name, len(ms), len(all), d.logPath)
		}
	}
	t.Logf("every member has every hello (+%.1fs)", time.Since(start).Seconds())

	// A second group of the members behind NATs alone: the relay is not in
	// it, so it does not carry the group's gossip as a member; the
	// member behind the symmetric NAT exchanges everything (Welcome,
	// messages) with the others through the relay's circuits.
	const behind = "behind"
	inviter.must("group", "create", behind)
	for _, d := range nated[1:] {
		inviter.must("invite", behind, d.name)
	}
	for _, d := range nated {
		if !waitUntil(60*time.Second, func() bool {
			g, err := d.group(behind)
			return err == nil && g.Members == len(nated) && !g.Pending
		}) {
			t.Fatalf("%s not in %s with %d members after 60s; log %s", d.name, behind, len(nated), d.logPath)
		}
		d.must("send", behind, "behind a NAT: "+d.name)
	}
	for _, d := range nated {
		if !waitUntil(30*time.Second, func() bool {
			ms, err := d.messages(behind)
			return err == nil && len(ms) == len(nated)
		}) {
			ms, _ := d.messages(behind)
			t.Fatalf("%s has %d of the %d messages of %s after 30s; log %s", d.name, len(ms), len(nated), behind, d.logPath)
		}
	}
	if _, err := relay.group(behind); err == nil {
		t.Errorf("the relay is in %s", behind)
	}
	t.Logf("the members behind NATs have each other's messages in a group without the relay (+%.1fs)", time.Since(start).Seconds())

	// The pairs' paths once more: a direct connection made by hole
	// punching stays, and nothing went direct that cannot.
	for _, p := range pairs {
		if got, w := p.a.via(p.b), want(p); got != w {
			t.Errorf("after the messages, %s reaches %s %q, want %q", p.a.name, p.b.name, got, w)
		}
	}
	// AutoNAT v2 checks the relay's public address through the members'
	// AutoNAT servers (each dials it back from behind its NAT); it takes
	// two confirmations from different servers, and three are connected.
	public := "/ip4/" + nw.relayAddr + "/"
	if !waitUntil(30*time.Second, func() bool { return strings.Contains(relay.logLast(reachableLine), public) }) {
		t.Errorf("relay: AutoNAT v2 did not confirm an address of %s as reachable (last check: %s)", nw.relayAddr, relay.logLast(addrsCheckedLine))
	}
	t.Logf("relay: AutoNAT v2 confirmed %s", relay.logLast(reachableLine))
	if st, err := relay.status(); err != nil || st.Reachability != "public" {
		t.Errorf("relay's status: reachability %q (%v), want public", st.Reachability, err)
	}
	for _, d := range nated {
		if got := d.logLast(reachableLine); got != "" {
			t.Errorf("%s: AutoNAT v2 found %s reachable behind a NAT", d.name, got)
		}
	}
	for _, d := range all {
		if c := d.logCounts(); c.panics > 0 {
			t.Errorf("%s panicked; log %s", d.name, d.logPath)
		}
	}
	t.Logf("done (+%.1fs)", time.Since(start).Seconds())
}

// keepLogs copies the daemons' logs out of the test's directory, which
// is removed at the end, when the test failed (or PARLEY_CHAOS_KEEP_LOGS
// is set).
func keepLogs(t *testing.T, work string) {
	if !t.Failed() && os.Getenv("PARLEY_CHAOS_KEEP_LOGS") == "" {
		return
	}
	logs, _ := filepath.Glob(filepath.Join(work, "*.log"))
	if len(logs) == 0 {
		return
	}
	dir, err := os.MkdirTemp("", "parley-nat-logs-")
	if err != nil {
		return
	}
	for _, l := range logs {
		if data, err := os.ReadFile(l); err == nil {
			os.WriteFile(filepath.Join(dir, filepath.Base(l)), data, 0o600)
		}
	}
	t.Logf("the daemons' logs are kept in %s", dir)
}

// Log lines of the p2p layer's AutoNAT and hole punch reports.
var (
	reachabilityLine = regexp.MustCompile(`msg="AutoNAT: reachability" .*reachability=(\w+)`)
	addrsCheckedLine = regexp.MustCompile(`msg="AutoNAT: addresses checked" (.*)`)
	reachableLine    = regexp.MustCompile(`msg="AutoNAT: addresses checked" .* reachable=\[([^]]+)\]`)
	directLine       = regexp.MustCompile(`msg="hole punch: direct connection" .*peer=(\w+)`)
	punchStartLine   = regexp.MustCompile(`msg="hole punch: start" .*peer=(\w+)`)
)

// holePunches counts the lines of d's log that line matches whose peer
// is other.
func (d *daemon) holePunches(other *daemon, line *regexp.Regexp) int {
	var id struct {
		PeerID string `json:"peer_id"`
	}
	if other.cliJSON(&id, "id") != nil {
		return 0
	}
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return 0
	}
	n := 0
	for _, m := range line.FindAllSubmatch(data, -1) {
		if string(m[1]) == id.PeerID {
			n++
		}
	}
	return n
}

// logLast returns the first group of the last line of the daemon's log
// that re matches ("" if none).
func (d *daemon) logLast(re *regexp.Regexp) string {
	data, err := os.ReadFile(d.logPath)
	if err != nil {
		return ""
	}
	m := re.FindAllSubmatch(data, -1)
	if len(m) == 0 {
		return ""
	}
	return string(m[len(m)-1][1])
}

func (d *daemon) logHas(re *regexp.Regexp, value string) bool {
	return d.logLast(re) == value
}

// relayAddrs returns the daemon's relayed addresses, as 'parley id' shows
// them.
func (d *daemon) relayAddrs() []string {
	var id struct {
		Addrs []string `json:"addrs"`
	}
	if d.cliJSON(&id, "id") != nil {
		return nil
	}
	var out []string
	for _, a := range id.Addrs {
		if strings.Contains(a, "/p2p-circuit") {
			out = append(out, a)
		}
	}
	return out
}

// contactAddrs returns the addresses of d's contact other, from its code.
func (d *daemon) contactAddrs(other *daemon) []string {
	var cs []struct {
		Name  string   `json:"name"`
		Addrs []string `json:"addrs"`
	}
	if d.cliJSON(&cs, "contacts") != nil {
		return nil
	}
	for _, c := range cs {
		if c.Name == other.name {
			return c.Addrs
		}
	}
	return nil
}

// via says how d reaches other, as the group's member list shows it:
// "direct", "relay", or "" when not connected.
func (d *daemon) via(other *daemon) string {
	var ms []struct {
		Name   string `json:"name"`
		Online bool   `json:"online"`
		Via    string `json:"via"`
	}
	if d.cliJSON(&ms, "members", group) != nil {
		return ""
	}
	for _, m := range ms {
		if m.Name == other.name && m.Online {
			return m.Via
		}
	}
	return ""
}

// natKind is how a router translates its member's connections.
type natKind int

const (
	// natPortKept: Linux masquerade, which keeps the source port when it
	// can: one public address and port per member socket, whatever the
	// destination (endpoint-independent mapping).
	natPortKept natKind = iota
	// natSymmetric: masquerade with fully random ports: a new public port
	// for every destination, so the port the relay saw is of no use to
	// anyone else.
	natSymmetric
)

// natLAN is one member's private network: a router namespace with a
// public side on the bridge and a private side to the member's namespace.
type natLAN struct {
	name       string
	kind       natKind
	routerNS   string
	memberNS   string
	publicAddr string // the router's address on the public segment
	memberAddr string
}

// natNetwork is the public segment with the relay's namespace on it, and
// the members' NATed LANs.
type natNetwork struct {
	hub       string
	relayNS   string
	relayAddr string
	lans      []natLAN
}

// newNATNetwork makes the namespaces, links, addresses and NAT rules, and
// removes them all when the test ends.
func newNATNetwork(t *testing.T, prefix string, kinds []natKind) *natNetwork {
	t.Helper()
	ip := &network{} // for its run and remove
	nw := &natNetwork{hub: prefix + "-hub", relayNS: prefix + "-relay", relayAddr: "11.77.0.1"}
	if out, err := exec.Command("ip", "netns", "add", nw.hub).CombinedOutput(); err != nil {
		t.Skipf("the NAT test needs network namespaces: ip netns add: %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() { ip.remove(nw.hub) })
	addNS := func(ns string) {
		ip.run(t, "netns", "add", ns)
		t.Cleanup(func() { ip.remove(ns) })
		ip.run(t, "-n", ns, "link", "set", "lo", "up")
	}
	// port plugs a new veth into the hub's bridge; its other end is
	// ifname in ns, with addr.
	port := func(hubPort, ns, ifname, addr string) {
		ip.run(t, "-n", nw.hub, "link", "add", hubPort, "type", "veth", "peer", "name", ifname, "netns", ns)
		ip.run(t, "-n", nw.hub, "link", "set", hubPort, "master", "br0")
		ip.run(t, "-n", nw.hub, "link", "set", hubPort, "up")
		ip.run(t, "-n", ns, "addr", "add", addr+"/24", "dev", ifname)
		ip.run(t, "-n", ns, "link", "set", ifname, "up")
	}
	ip.run(t, "-n", nw.hub, "link", "set", "lo", "up")
	ip.run(t, "-n", nw.hub, "link", "add", "br0", "type", "bridge")
	ip.run(t, "-n", nw.hub, "link", "set", "br0", "up")
	addNS(nw.relayNS)
	port("vr", nw.relayNS, "eth0", nw.relayAddr)
	for i, kind := range kinds {
		lan := natLAN{
			kind:       kind,
			routerNS:   fmt.Sprintf("%s-rt%d", prefix, i),
			memberNS:   fmt.Sprintf("%s-m%d", prefix, i),
			publicAddr: fmt.Sprintf("11.77.0.%d", 11+i),
			memberAddr: fmt.Sprintf("192.168.%d.2", i+1),
		}
		lan.name = fmt.Sprintf("eim%d", i)
		if kind == natSymmetric {
			lan.name = fmt.Sprintf("sym%d", i)
		}
		gateway := fmt.Sprintf("192.168.%d.1", i+1)
		addNS(lan.routerNS)
		addNS(lan.memberNS)
		port(fmt.Sprintf("vp%d", i), lan.routerNS, "pub", lan.publicAddr)
		ip.run(t, "-n", lan.routerNS, "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", lan.memberNS)
		ip.run(t, "-n", lan.routerNS, "addr", "add", gateway+"/24", "dev", "lan")
		ip.run(t, "-n", lan.routerNS, "link", "set", "lan", "up")
		ip.run(t, "-n", lan.memberNS, "addr", "add", lan.memberAddr+"/24", "dev", "eth0")
		ip.run(t, "-n", lan.memberNS, "link", "set", "eth0", "up")
		ip.run(t, "-n", lan.memberNS, "route", "add", "default", "via", gateway)
		nsExec(t, lan.routerNS, nil, "sh", "-c", "echo 1 >/proc/sys/net/ipv4/ip_forward")
		nsExec(t, lan.routerNS, strings.NewReader(natRules(kind)), "nft", "-f", "-")
		nw.lans = append(nw.lans, lan)
	}
	return nw
}

// natRules is a router's nftables ruleset: masquerade what leaves by the
// public side, forward only the member's connections and their answers,
// and drop whatever else arrives there.
func natRules(kind natKind) string {
	masquerade := "masquerade"
	if kind == natSymmetric {
		masquerade = "masquerade random,fully-random"
	}
	return `table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "pub" ` + masquerade + `
	}
}
table ip filter {
	chain forward {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "pub" accept
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "pub" ct state established,related accept
		iifname "pub" drop
	}
}
`
}

// nsExec runs a command in a namespace.
func nsExec(t *testing.T, ns string, stdin *strings.Reader, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip netns exec %s %s: %v: %s", ns, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}
