package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/node"
)

const statusUsage = `Usage: parley status [--check] [--json] [--data DIR]

Shows the daemon's peer ID and number of connected peers, and for each
group: its epoch and last final epoch, members (and how many are online),
forks and rollbacks seen, own messages whose epoch is not final yet
(outbox), and its state with the reason: ok (it has everything the other
members' latest heads say exists), behind (with how many messages and
bytes, or epochs, it still has to fetch, from members online), stalled
(it lacks something and no member is online to fetch it from), syncing
(catch-up requests outstanding), offline (no other member online),
pending, removed, damaged (its saved state cannot be read), or stopped
(its state could not be saved, as when the disk is full: it starts
again by itself, from what was saved, once it can). Below the
table, what to do for each group that needs something. It also says
how the store is sealed at rest: by a passphrase (argon2id), or by the key
file DIR/key, which anyone who can copy the directory can read.

  --check   for monitors: exit 1 (after the report) if a group is behind,
            stalled, damaged, stopped or removed, naming them on stderr; 0 if
            every group is ok, syncing, offline or pending
` + jsonFlag + commonFlags

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("status", statusUsage, true, stdout, stderr)
	check := c.fs.Bool("check", false, "")
	_, client, err := c.connect(ctx, args, 0, 0, "")
	if err != nil {
		return err
	}
	defer client.Close()
	st, err := client.Status(ctx)
	if err != nil {
		return explain(err)
	}
	if err := printStatus(c, st, stdout); err != nil || !*check {
		return err
	}
	return checkHealth(st)
}

// needsAttention is status --check's failure: the report is printed
// already (under --json too, with every group's state), so Run prints
// only this line, on stderr, and exits 1.
type needsAttention struct{ groups []string }

func (e needsAttention) Error() string {
	return fmt.Sprintf("%d of the groups need attention: %s", len(e.groups), strings.Join(e.groups, ", "))
}

// checkHealth fails with the groups whose state needs the user: behind,
// stalled, damaged or removed (not ok, syncing, offline or pending, which
// are normal states of a working node).
func checkHealth(st api.Status) error {
	var bad []string
	for _, g := range st.Groups {
		switch state, _, _ := api.Health(g); state {
		case api.StateBehind, api.StateStalled, api.StateDamaged, api.StateStopped, api.StateRemoved:
			bad = append(bad, fmt.Sprintf("%s (%s)", clean(g.Name), state))
		}
	}
	if len(bad) > 0 {
		return needsAttention{bad}
	}
	return nil
}

// printStatus prints the status report, as a table or (--json) JSON.
func printStatus(c *command, st api.Status, stdout io.Writer) error {
	// The store's seal is read from its header in the data directory:
	// it needs no key, and the daemon's API does not carry it.
	var seal *node.StoreSeal
	if dir, err := dataDir(c.data); err == nil {
		if s, err := node.ReadStoreSeal(dir); err == nil {
			seal = &s
		}
	}
	if c.json {
		if st.Groups == nil {
			st.Groups = []api.GroupStatus{}
		}
		return c.printJSON(struct {
			api.Status
			Store *node.StoreSeal `json:"store,omitempty"`
		}{st, seal})
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "peer id\t%s\n", clean(st.PeerID))
	fmt.Fprintf(tw, "peers\t%d\n", st.Peers)
	if seal != nil {
		fmt.Fprintf(tw, "store\tsealed by %s\n", clean(seal.Summary))
	}
	if st.StoreBytes > 0 {
		fmt.Fprintf(tw, "store size\t%s\n", size(st.StoreBytes))
	}
	switch st.Reachability {
	case "public":
		fmt.Fprintln(tw, "reachability\tpublic: others can dial this node")
	case "private":
		if len(st.RelayAddrs) > 0 {
			fmt.Fprintf(tw, "reachability\tprivate: behind a NAT, reached through a relay (%d relayed addresses) and directly where hole punching works\n", len(st.RelayAddrs))
		} else {
			fmt.Fprintln(tw, "reachability\tprivate: behind a NAT with no relay yet (peers reach it only if it dials them; --relay ADDR names one)")
		}
	case "unknown":
		fmt.Fprintln(tw, "reachability\tunknown (no peer has checked it: normal on a LAN)")
	}
	if st.Goroutines > 0 {
		fmt.Fprintf(tw, "memory\t%s of live heap, %d goroutines\n", size(int64(st.HeapBytes)), st.Goroutines)
	}
	if len(st.Groups) == 0 {
		fmt.Fprintln(tw, "groups\tnone")
	}
	if err := tw.Flush(); err != nil || len(st.Groups) == 0 {
		return err
	}
	fmt.Fprintln(stdout)
	tw = newTable(stdout)
	fmt.Fprintln(tw, "GROUP\tEPOCH\tFINAL\tMEMBERS\tONLINE\tFORKS\tROLLBACKS\tOUTBOX\tSUITE\tSTATE")
	var suites []api.Group // one group of each suite, for the names
	for _, g := range st.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", clean(g.Name), g.Epoch, g.FinalEpoch, g.Members,
			g.OnlinePeers, g.Forks, g.Rollbacks, g.Outbox, suiteNumber(g.Group), statusState(g))
		if g.Suite != 0 && !slices.ContainsFunc(suites, func(s api.Group) bool { return s.Suite == g.Suite }) {
			suites = append(suites, g.Group)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// What to do, for the groups that need something.
	var todo []string
	for _, g := range st.Groups {
		if _, _, do := api.Health(g); do != "" {
			todo = append(todo, fmt.Sprintf("%s: %s", clean(g.Name), clean(do)))
		}
	}
	for _, g := range st.Groups {
		if len(g.Waiting) > 0 {
			todo = append(todo, fmt.Sprintf("%s: waiting to be committed: %s", clean(g.Name), waitingChanges(g.Waiting, time.Now())))
		}
	}
	if len(todo) > 0 {
		fmt.Fprintln(stdout)
		for _, line := range todo {
			fmt.Fprintln(stdout, line)
		}
	}
	if len(suites) == 0 {
		return nil
	}
	fmt.Fprintln(stdout)
	for _, g := range suites {
		fmt.Fprintf(stdout, "suite %s %s\n", suiteNumber(g), clean(g.SuiteName))
	}
	return nil
}

// suiteNumber is a group's cipher suite number as 'parley suites' shows
// it, or "-" if not known.
func suiteNumber(g api.Group) string {
	if g.Suite == 0 {
		return "-"
	}
	return fmt.Sprintf("0x%04x", g.Suite)
}

// statusState is a group's STATE column: its health and the reason.
func statusState(g api.GroupStatus) string {
	state, reason, _ := api.Health(g)
	if reason == "" {
		return state
	}
	return clean(state + ": " + reason)
}

// waitingChanges says which membership changes wait to be committed, and
// for how long: "add bob (asked 12s ago), remove dave".
func waitingChanges(cs []api.Change, now time.Time) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = clean(c.Change + " " + c.Member)
		switch {
		case c.By != "" && c.Change == "leave":
			parts[i] = clean(c.By + "'s leave")
		case c.By != "":
			parts[i] += clean(" (proposed by " + c.By + ")")
		case c.Change == "leave":
			parts[i] = "your leave"
		}
		if !c.AskedAt.IsZero() {
			parts[i] += fmt.Sprintf(" (asked %s ago)", max(now.Sub(c.AskedAt), 0).Round(time.Second))
		}
	}
	return strings.Join(parts, ", ")
}
