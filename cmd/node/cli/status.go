package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/parley-p2p/parley/cmd/node/api"
)

const statusUsage = `Usage: parley status [--json] [--data DIR]

Shows the daemon's peer ID and number of connected peers, and for each
group: its epoch and last final epoch, members (and how many are online),
forks and rollbacks seen, own messages not final yet (outbox), and its
state (ok, syncing while catching up, pending, removed).

` + jsonFlag + commonFlags

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("status", statusUsage, true, stdout, stderr)
	if _, err := c.parse(args, 0, 0, ""); err != nil {
		return err
	}
	client, err := c.dial(ctx)
	if err != nil {
		return explain(err)
	}
	defer client.Close()
	st, err := client.Status(ctx)
	if err != nil {
		return explain(err)
	}
	if c.json {
		if st.Groups == nil {
			st.Groups = []api.GroupStatus{}
		}
		return c.printJSON(st)
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "peer id\t%s\n", clean(st.PeerID))
	fmt.Fprintf(tw, "peers\t%d\n", st.Peers)
	if len(st.Groups) == 0 {
		fmt.Fprintln(tw, "groups\tnone")
	}
	if err := tw.Flush(); err != nil || len(st.Groups) == 0 {
		return err
	}
	fmt.Fprintln(stdout)
	tw = newTable(stdout)
	fmt.Fprintln(tw, "GROUP\tEPOCH\tFINAL\tMEMBERS\tONLINE\tFORKS\tROLLBACKS\tOUTBOX\tSTATE")
	for _, g := range st.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", clean(g.Name), g.Epoch, g.FinalEpoch, g.Members,
			g.OnlinePeers, g.Forks, g.Rollbacks, g.Outbox, statusState(g))
	}
	return tw.Flush()
}

func statusState(g api.GroupStatus) string {
	switch {
	case g.Removed:
		return "removed"
	case g.Pending:
		return "pending"
	case g.Syncing:
		return "syncing"
	}
	return "ok"
}
