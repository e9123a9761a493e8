package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
)

const requestsUsage = `Usage: parley requests [--json] [--data DIR]

Lists the joins that wait for your approval: people who used an invite
code you made with 'parley invite GROUP --approve', or one any member
made with 'parley invite GROUP --approve-by members' (INVITED BY names
who; DECIDES says "any member" for those: the first member to approve
or deny decides for all). Compare the fingerprint with theirs (they see
it with 'parley id'), then 'parley approve ID' adds them to the group,
'parley deny ID' does not.

` + jsonFlag + commonFlags

func runRequests(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("requests", requestsUsage, true, stdout, stderr)
	_, client, err := c.connect(ctx, args, 0, 0, "")
	if err != nil {
		return err
	}
	defer client.Close()
	rs, err := client.JoinRequests(ctx)
	if err != nil {
		return explain(err)
	}
	if done, err := printList(c, rs, "no joins wait for your approval; 'parley invite GROUP --approve' makes a code whose joins do",
		"ID\tGROUP\tNAME\tINVITED BY\tDECIDES\tASKED\tFINGERPRINT", func(r api.JoinRequest) string {
			decides := "you"
			if r.ApproveBy == api.ApproveByMembers {
				decides = "any member"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s ago\t%s", clean(r.ID), clean(r.GroupName), clean(r.Name),
				clean(r.InvitedBy), decides, time.Since(r.At).Round(time.Second), clean(r.Fingerprint))
		}); done || err != nil {
		return err
	}
	fmt.Fprintln(stdout, "\ncompare each fingerprint with theirs, then: parley approve ID, or parley deny ID")
	return nil
}

const (
	approveUsage = `Usage: parley approve ID [--data DIR]

Adds the person of a join request ('parley requests' lists them) to its
group. 'parley deny ID' drops a request instead. A request that any
member decides (an invite code made with --approve-by members) is
decided for all the members: it leaves their lists too.

` + commonFlags
	denyUsage = `Usage: parley deny ID [--data DIR]

Drops a join request ('parley requests' lists them): its person is not
added, and the invite code they used stays spent (they need a new one).
A request that any member decides is denied for all the members.

` + commonFlags
)

// runDecide runs approve or deny.
func runDecide(ctx context.Context, verb string, args []string, stdout, stderr io.Writer) error {
	usage := approveUsage
	if verb == "deny" {
		usage = denyUsage
	}
	c := newCommand(verb, usage, false, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 1, 1, "ID")
	if err != nil {
		return err
	}
	defer client.Close()
	if verb == "approve" {
		err = client.Approve(ctx, pos[0])
	} else {
		err = client.Deny(ctx, pos[0])
	}
	switch {
	case errors.Is(err, api.ErrNotFound):
		return explainf(err, "no join request %s; 'parley requests' lists them", quoteArg(pos[0]))
	case errors.Is(err, api.ErrExists):
		return explainf(err, "the person of join request %s is a member of the group already", quoteArg(pos[0]))
	case err != nil:
		return explain(err)
	}
	if verb == "approve" {
		fmt.Fprintf(stdout, "approved %s: they are added to the group and join when their node is online\n", clean(pos[0]))
	} else {
		fmt.Fprintf(stdout, "denied %s\n", clean(pos[0]))
	}
	return nil
}

// joinRequestLine tells of a join request in the chat: who, the
// fingerprint to compare, and the commands.
func joinRequestLine(r api.JoinRequest) string {
	return fmt.Sprintf("%s asks to join (fingerprint %s): parley approve %s, or parley deny %s",
		clean(r.Name), clean(r.Fingerprint), quoteArg(r.ID), quoteArg(r.ID))
}
