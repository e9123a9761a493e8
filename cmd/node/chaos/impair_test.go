package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Link impairment: frames lost on a member's link to the bridge, its
// bandwidth limited, and with netem a delay. Each member's link is
// impaired both ways, independently of the others: a frame from one
// member to another crosses two links and may be lost on either.
//
// netem is the natural tool, but the kernels this runs on lack sch_netem
// ("Specified qdisc kind is unknown"), so the impairer probes for it once
// and otherwise drops frames with nftables in the bridge family (a chain
// per port, matching frames that come in by it or go out by it) and
// limits bandwidth with tbf. tbf, like any qdisc, shapes what leaves an
// interface, so a slow link has one on the hub's port (towards the
// member) and one on eth0 in the member's namespace (from it). All of it
// lives in the hub's and the members' namespaces, which go when the test
// ends.

// link is what an impairment sets on one member's link, each way.
type link struct {
	loss  int           // frames dropped, in basis points (1/100 of a percent)
	rate  int           // bandwidth in kbit/s; 0 is unlimited
	delay time.Duration // added latency; only with netem
}

func (l link) String() string {
	var parts []string
	if l.loss > 0 {
		parts = append(parts, fmt.Sprintf("%s loss", percent(l.loss)))
	}
	if l.rate > 0 {
		parts = append(parts, fmt.Sprintf("%.1f Mbit/s", float64(l.rate)/1000))
	}
	if l.delay > 0 {
		parts = append(parts, fmt.Sprintf("%v delay (netem only)", l.delay))
	}
	if len(parts) == 0 {
		return "unimpaired"
	}
	return strings.Join(parts, ", ")
}

// percent formats basis points as a percentage, as tc reads it too.
func percent(bp int) string {
	return fmt.Sprintf("%d.%02d%%", bp/100, bp%100)
}

// nftTable is the impairer's table in the hub's namespace.
const nftTable = "parley_impair"

// impairer sets the links of a network's members.
type impairer struct {
	nw    *network
	netem bool   // netem does everything; else nft and tbf
	why   string // why netem is not used
	base  link   // every link's state outside impairment windows
	links []link // each link's current state
}

// newImpairer probes for netem, sets up nftables and tbf when it is
// missing, and sets every link to base. It skips the test, saying why and
// what to do instead, when the machine can impair links neither way; it
// fails it when a later step does not work.
func newImpairer(t *testing.T, nw *network, base link) *impairer {
	t.Helper()
	im := &impairer{nw: nw, base: base, links: make([]link, len(nw.nodes))}
	const skip = "link impairment needs netem, or nftables in the bridge family and tbf (Debian: apt-get install nftables); " +
		"or run without it: PARLEY_CHAOS_IMPAIR=0 PARLEY_CHAOS_LOSS=0"
	// The probe uses a hub port; it is not in use yet.
	if _, err := im.hubCmd("tc", "qdisc", "add", "dev", "v0", "root", "netem", "delay", "1ms"); err != nil {
		im.why = err.Error()
	} else {
		im.netem = true
		if _, err := im.hubCmd("tc", "qdisc", "del", "dev", "v0", "root"); err != nil {
			t.Fatalf("removing the netem probe: %v", err)
		}
	}
	if !im.netem {
		if _, err := im.hubCmd("tc", "qdisc", "add", "dev", "v0", "root", "tbf", "rate", "1mbit", "burst", "15000", "latency", "400ms"); err != nil {
			t.Skipf("%s: %v", skip, err)
		}
		if _, err := im.hubCmd("tc", "qdisc", "del", "dev", "v0", "root"); err != nil {
			t.Fatalf("removing the tbf probe: %v", err)
		}
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skipf("%s: %v", skip, err)
		}
		if _, err := im.nft(im.ruleset()); err != nil {
			t.Skipf("%s: %v", skip, err)
		}
	}
	for i := range im.links {
		if err := im.set(i, base); err != nil {
			t.Fatal(err)
		}
	}
	return im
}

// mechanism says how links are impaired, for the test's log.
func (im *impairer) mechanism() string {
	if im.netem {
		return "netem on both ends of each link (loss, delay, rate)"
	}
	return fmt.Sprintf("nftables in the hub's bridge (loss, each way) and tbf on both ends of a link (rate); no netem: %s", im.why)
}

// ruleset is the nftables table: the bridge's forward hook sends every
// frame through the chain of the port it came in by and then that of the
// port it leaves by, and each port's chain drops a share of them (set by
// set), counting what it drops.
func (im *impairer) ruleset() string {
	var b strings.Builder
	fmt.Fprintf(&b, "table bridge %s {\n", nftTable)
	for i := range im.links {
		fmt.Fprintf(&b, "\tcounter lost_v%d {}\n\tchain link_v%d {}\n", i, i)
	}
	b.WriteString("\tchain links {\n\t\ttype filter hook forward priority 0; policy accept;\n")
	for i := range im.links {
		fmt.Fprintf(&b, "\t\tiifname \"v%d\" jump link_v%d\n\t\toifname \"v%d\" jump link_v%d\n", i, i, i, i)
	}
	b.WriteString("\t}\n}\n")
	return b.String()
}

// set impairs link i as l says (the zero link is no impairment).
func (im *impairer) set(i int, l link) error {
	was := im.links[i]
	port, ns := fmt.Sprintf("v%d", i), im.nw.nodes[i]
	if im.netem {
		qdisc := []string{"root", "netem"}
		if l.delay > 0 {
			// A tenth of the delay as jitter, so that some frames
			// are reordered too.
			qdisc = append(qdisc, "delay", fmt.Sprintf("%dus", l.delay.Microseconds()), fmt.Sprintf("%dus", l.delay.Microseconds()/10))
		}
		if l.loss > 0 {
			qdisc = append(qdisc, "loss", percent(l.loss))
		}
		if l.rate > 0 {
			qdisc = append(qdisc, "rate", fmt.Sprintf("%dkbit", l.rate))
		}
		if err := im.qdisc(port, ns, was != link{}, l != link{}, qdisc); err != nil {
			return err
		}
		im.links[i] = l
		return nil
	}
	if l.loss != was.loss {
		script := fmt.Sprintf("flush chain bridge %s link_%s\n", nftTable, port)
		if l.loss > 0 {
			// numgen's values are below the modulus, which is also
			// the largest number nft lets a rule compare them with:
			// losing everything matches every frame.
			match := fmt.Sprintf("numgen random mod 10000 < %d ", l.loss)
			if l.loss >= 10000 {
				match = ""
			}
			script += fmt.Sprintf("add rule bridge %s link_%s %scounter name \"lost_%s\" drop\n", nftTable, port, match, port)
		}
		if _, err := im.nft(script); err != nil {
			return err
		}
	}
	if l.rate != was.rate {
		// The bucket holds 20 ms at the rate, and at least ten full
		// frames: less would hold the link below its rate.
		burst := max(15000, l.rate*1000/8/50)
		qdisc := []string{"root", "tbf", "rate", fmt.Sprintf("%dkbit", l.rate), "burst", fmt.Sprint(burst), "latency", "400ms"}
		if err := im.qdisc(port, ns, was.rate > 0, l.rate > 0, qdisc); err != nil {
			return err
		}
	}
	// Whatever else l holds (a delay) needs netem: without it the link
	// has no delay, which the schedule allows.
	im.links[i] = l
	return nil
}

// qdisc replaces the root qdisc of both ends of a link (port in the hub,
// eth0 in ns) with the one given, or removes the one there (had) when
// want is false.
func (im *impairer) qdisc(port, ns string, had, want bool, qdisc []string) error {
	for _, end := range []struct{ ns, dev string }{{im.nw.hub, port}, {ns, "eth0"}} {
		var err error
		switch {
		case want:
			_, err = nsCmd(end.ns, append([]string{"tc", "qdisc", "replace", "dev", end.dev}, qdisc...)...)
		case had:
			_, err = nsCmd(end.ns, "tc", "qdisc", "del", "dev", end.dev, "root")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// restore sets every link back to the base state.
func (im *impairer) restore() error {
	for i := range im.links {
		if err := im.set(i, im.base); err != nil {
			return err
		}
	}
	return nil
}

// lost returns the frames that nftables dropped on each link so far (each
// direction counted), or nil with netem, whose drops are not kept across
// the replacements of its qdisc.
func (im *impairer) lost() ([]int64, error) {
	if im.netem {
		return nil, nil
	}
	out, err := im.hubCmd("nft", "-j", "list", "counters", "table", "bridge", nftTable)
	if err != nil {
		return nil, err
	}
	var list struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets int64  `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, fmt.Errorf("nft -j list counters: %w", err)
	}
	lost := make([]int64, len(im.links))
	for _, e := range list.Nftables {
		var i int
		if e.Counter == nil {
			continue
		}
		if _, err := fmt.Sscanf(e.Counter.Name, "lost_v%d", &i); err == nil && i >= 0 && i < len(lost) {
			lost[i] = e.Counter.Packets
		}
	}
	return lost, nil
}

func (im *impairer) nft(script string) ([]byte, error) {
	cmd := exec.Command("ip", "netns", "exec", im.nw.hub, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("nft -f - in %s: %w: %s (script: %q)", im.nw.hub, err, bytes.TrimSpace(out), script)
	}
	return out, nil
}

func (im *impairer) hubCmd(args ...string) ([]byte, error) {
	return nsCmd(im.nw.hub, args...)
}

// nsCmd runs a command in a namespace and returns its standard output.
func nsCmd(ns string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s in %s: %w: %s", strings.Join(args, " "), ns, err, bytes.TrimSpace(errOut.Bytes()))
	}
	return out.Bytes(), nil
}
