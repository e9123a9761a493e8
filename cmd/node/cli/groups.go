package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/node"
)

var groupUsage = `Usage: parley group create NAME [--suite SUITE] [--json] [--data DIR]
       parley group forget GROUP [--force] [--data DIR]

create makes a group with you as its only member; add people with
'parley invite NAME CONTACT' or give them 'parley invite NAME'. --suite
picks its MLS cipher suite, a name or number from 'parley suites' (such
as 0x0054, 84 or MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519); the
default is ` + defaultSuite + `.
A group keeps its suite for good.

forget removes GROUP (its name or id) from this node, for good: its
saved state, its history, the records of files still arriving. It is
for a group you are no longer in, one still waiting for a member to let
you in, or one whose saved state is damaged ('parley groups' shows
which); after it, a member can invite you again (if the group still
counts you in, they remove you first). Files already received stay
where they are. A group you are still in is refused: leave it first
with 'parley leave GROUP', or forget it anyway with --force (the other
members are not told, and count you in until one of them removes you).

` + jsonFlag + `  --suite S    create: the group's cipher suite
  --force      forget a group you are still a member of
` + commonFlags

const groupSubcommands = "usage: parley group create NAME, or parley group forget GROUP"

func runGroup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("missing subcommand (" + groupSubcommands + ")")
	}
	switch args[0] {
	case "create":
		return runGroupCreate(ctx, args[1:], stdout, stderr)
	case "forget":
		return runGroupForget(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, groupUsage)
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		return errors.New("missing subcommand (" + groupSubcommands + ")")
	}
	return fmt.Errorf("unknown subcommand %q (%s)", args[0], groupSubcommands)
}

func runGroupForget(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("group forget", groupUsage, false, stdout, stderr)
	force := c.fs.Bool("force", false, "")
	pos, client, err := c.connect(ctx, args, 1, 1, "GROUP")
	if err != nil {
		return err
	}
	defer client.Close()
	group := pos[0]
	err = client.ForgetGroup(ctx, group, *force)
	switch {
	case errors.Is(err, api.ErrInvalid):
		return explainf(err, "you are a member of %q: leave it first with 'parley leave %s' and forget it once you are out, or forget it now with --force (the other members are not told)", group, quoteArg(group))
	case err != nil:
		return groupError(err, group)
	}
	fmt.Fprintf(stdout, "forgot %s: its state and history are gone from this node\n", clean(group))
	return nil
}

// defaultSuite names the cipher suite of new groups for the usage text.
var defaultSuite = fmt.Sprintf("0x%04x (%v)", uint16(node.DefaultSuite), node.DefaultSuite)

func runGroupCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("group create", groupUsage, true, stdout, stderr)
	suiteArg := c.fs.String("suite", "", "")
	pos, err := c.parse(args, 1, 1, "NAME")
	if err != nil {
		return err
	}
	var opts []api.GroupOption
	if *suiteArg != "" {
		cs, err := node.ParseSuite(*suiteArg)
		if err != nil {
			// One line, without the sentinel's prefix: what is wrong and
			// where the list is.
			return errors.New(strings.TrimPrefix(err.Error(), node.ErrSuite.Error()+": "))
		}
		opts = append(opts, api.WithSuite(fmt.Sprintf("0x%04x", uint16(cs))))
	}
	client, err := c.dial(ctx)
	if err != nil {
		return explain(err)
	}
	defer client.Close()
	g, err := client.CreateGroup(ctx, pos[0], opts...)
	if errors.Is(err, api.ErrExists) {
		return explainf(err, "you already have a group named %q; pick another name", pos[0])
	}
	if err != nil {
		return explain(err)
	}
	if c.json {
		return c.printJSON(g)
	}
	fmt.Fprintf(stdout, "created group %s (id %s, suite %s)\n", clean(g.Name), g.ID, suiteNumber(g))
	return nil
}

const groupsUsage = `Usage: parley groups [--json] [--data DIR]

Lists your groups: name, id, epoch, number of members, and state
(member, pending while a join waits for its Welcome, removed, or
damaged when its saved state cannot be read, with the way out).

` + jsonFlag + commonFlags

func runGroups(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("groups", groupsUsage, true, stdout, stderr)
	_, client, err := c.connect(ctx, args, 0, 0, "")
	if err != nil {
		return err
	}
	defer client.Close()
	list, err := client.Groups(ctx)
	if err != nil {
		return explain(err)
	}
	_, err = printList(c, list, "no groups yet; create one with 'parley group create NAME' or join one with 'parley join CODE'",
		"NAME\tID\tEPOCH\tMEMBERS\tSTATE", func(g api.Group) string {
			return fmt.Sprintf("%s\t%s\t%d\t%d\t%s", clean(g.Name), g.ID, g.Epoch, g.Members, groupState(g))
		})
	return err
}

func groupState(g api.Group) string {
	switch {
	case g.Damaged != "":
		return damagedState(g)
	case g.Removed:
		return "removed"
	case g.Pending:
		return "pending"
	}
	return "member"
}

// damagedState is the state of a damaged group: why, and the way out.
func damagedState(g api.Group) string {
	return fmt.Sprintf("damaged: %s; 'parley group forget %s', then ask a member to remove and re-invite you", clean(g.Damaged), quoteArg(g.Name))
}

const membersUsage = `Usage: parley members GROUP [--json] [--data DIR]

Lists the members of GROUP (its name or id): name, online state ("online
via relay" for a member reached only through a relay), who added them,
fingerprint.

` + jsonFlag + commonFlags

func runMembers(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("members", membersUsage, true, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 1, 1, "GROUP")
	if err != nil {
		return err
	}
	defer client.Close()
	list, err := client.Members(ctx, pos[0])
	if err != nil {
		return groupError(err, pos[0])
	}
	if done, err := printList(c, list, "", "NAME\tSTATUS\tADDED BY\tFINGERPRINT", func(m api.Member) string {
		name, online := clean(m.Name), m.Online
		if m.Self {
			name, online = name+" (you)", true
		}
		addedBy := clean(m.AddedBy)
		if addedBy == "" {
			addedBy = "-"
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s", name, onOffVia(online, m.Via), addedBy, clean(m.Fingerprint))
	}); done || err != nil {
		return err
	}
	if list, err := client.Groups(ctx); err == nil {
		if g, err := findGroup(list, pos[0]); err == nil && g.Suite != 0 {
			fmt.Fprintf(stdout, "\nsuite %s %s\n", suiteNumber(g), clean(g.SuiteName))
		}
	}
	return nil
}

const inviteUsage = `Usage: parley invite GROUP CONTACT [--json] [--data DIR]
       parley invite GROUP [--approve | --approve-by inviter|members] [--json] [--data DIR]

With CONTACT (a name from 'parley contacts', a peer ID or a fingerprint),
adds that contact to GROUP. They need not be online: their Welcome waits
with the members until their node comes up.

Without CONTACT, prints an invite code for someone who is not a contact
yet. They run 'parley join CODE'; their node then reaches a member, who
adds them. The code lets nobody in by itself.

  --approve  the join waits for you: 'parley requests' lists who asks
             (name and fingerprint, to compare with theirs), 'parley
             approve ID' adds them, 'parley deny ID' does not
  --approve-by inviter|members
             who approves the join: inviter is --approve; members sends
             the request to the group, and any member decides it with
             'parley requests', 'parley approve ID' or 'parley deny ID'
             (also while your node is offline)

` + jsonFlag + commonFlags

func runInvite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("invite", inviteUsage, true, stdout, stderr)
	approve := c.fs.Bool("approve", false, "")
	approveBy := c.fs.String("approve-by", "", "")
	pos, client, err := c.connect(ctx, args, 1, 2, "GROUP [CONTACT]")
	if err != nil {
		return err
	}
	defer client.Close()
	group := pos[0]
	by, err := approver(*approve, *approveBy)
	if err != nil {
		return err
	}
	if by != "" && len(pos) == 2 {
		return fmt.Errorf("--approve is for an invite code (parley invite GROUP --approve, or --approve-by members): a contact you invite is added at once")
	}
	if len(pos) == 1 {
		var opts []api.InviteOption
		switch by {
		case api.ApproveByInviter:
			opts = append(opts, api.WithApproval())
		case api.ApproveByMembers:
			opts = append(opts, api.WithApprovalByMembers())
		}
		code, err := client.InviteCode(ctx, group, opts...)
		if err != nil {
			return groupError(err, group)
		}
		if c.json {
			out := map[string]any{"group": group, "code": code}
			if by != "" {
				out["approve"] = true
				out["approve_by"] = by
			}
			return c.printJSON(out)
		}
		fmt.Fprintln(stdout, code)
		switch by {
		case api.ApproveByInviter:
			fmt.Fprintf(stderr, "give this code to the person you invite; when they run 'parley join CODE', 'parley requests' shows them and 'parley approve ID' adds them to %s\n", clean(group))
		case api.ApproveByMembers:
			fmt.Fprintf(stderr, "give this code to the person you invite; when they run 'parley join CODE', any member of %s approves them: 'parley requests' shows them to every member and 'parley approve ID' adds them\n", clean(group))
		default:
			fmt.Fprintf(stderr, "give this code to the person you invite; they run 'parley join CODE' and a member of %s adds them\n", clean(group))
		}
		return nil
	}
	contact := pos[1]
	err = client.Invite(ctx, group, contact)
	switch {
	case (errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrAmbiguous)) && !groupKnown(ctx, client, group):
		return groupError(err, group)
	case errors.Is(err, api.ErrNotFound):
		return explainf(err, "no contact named %q; 'parley contacts' lists yours, 'parley contact add CODE' adds one", contact)
	case errors.Is(err, api.ErrAmbiguous):
		return explainf(err, "several contacts match %q; name them by fingerprint ('parley contacts' shows them)", contact)
	case errors.Is(err, api.ErrExists):
		return explainf(err, "%s is already a member of %s, or your invite of them is on its way ('parley members %s' lists the members)", clean(contact), clean(group), quoteArg(group))
	case err != nil:
		return groupError(err, group)
	}
	if c.json {
		return c.printJSON(map[string]string{"group": group, "contact": contact})
	}
	fmt.Fprintf(stdout, "invited %s to %s; they join when their node is online\n", clean(contact), clean(group))
	return nil
}

// approver reads --approve and --approve-by: who approves the joins with
// an invite code ("" for nobody).
func approver(approve bool, by string) (string, error) {
	switch {
	case by != "" && by != api.ApproveByInviter && by != api.ApproveByMembers:
		return "", usageError{fmt.Errorf("--approve-by is %s or %s, not %q", api.ApproveByInviter, api.ApproveByMembers, by)}
	case approve && by == api.ApproveByMembers:
		return "", usageError{fmt.Errorf("--approve is --approve-by %s; give one of them", api.ApproveByInviter)}
	case approve:
		return api.ApproveByInviter, nil
	}
	return by, nil
}

const joinUsage = `Usage: parley join CODE [--json] [--data DIR]

Joins a group with an invite code from one of its members ('parley invite
GROUP'). The group shows as pending in 'parley groups' until a member
adds you.

` + jsonFlag + commonFlags

func runJoin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("join", joinUsage, true, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 1, 1, "CODE")
	if err != nil {
		return err
	}
	defer client.Close()
	g, err := client.Join(ctx, pos[0])
	switch {
	case errors.Is(err, api.ErrBadCode):
		// The reason: a code that does not decode, or one the inviting
		// member refused (used, unknown, expired).
		reason := strings.TrimPrefix(message(err), api.ErrBadCode.Error()+": ")
		return explainf(err, "the invite code did not work: %s; ask a member for a new one, they print it with 'parley invite GROUP'", reason)
	case errors.Is(err, api.ErrExists):
		return explainf(err, "you are already in that group ('parley groups' lists yours)")
	case err != nil:
		return explain(err)
	}
	if c.json {
		return c.printJSON(g)
	}
	switch {
	case g.Pending && g.Approval == api.ApproveByInviter:
		fmt.Fprintf(stdout, "joining %s; the member who invited you approves each join: it shows as pending in 'parley groups' until they do\n", clean(g.Name))
	case g.Pending && g.Approval == api.ApproveByMembers:
		fmt.Fprintf(stdout, "joining %s; a member of the group approves each join: it shows as pending in 'parley groups' until one does\n", clean(g.Name))
	case g.Pending:
		fmt.Fprintf(stdout, "joining %s; it shows as pending in 'parley groups' until a member adds you\n", clean(g.Name))
	default:
		fmt.Fprintf(stdout, "joined %s\n", clean(g.Name))
	}
	return nil
}

const removeUsage = `Usage: parley remove GROUP MEMBER [--data DIR]

Removes MEMBER (a name from 'parley members GROUP', a peer ID or a
fingerprint) from GROUP. To remove yourself, use 'parley leave GROUP'.

` + commonFlags

func runRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("remove", removeUsage, false, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 2, 2, "GROUP MEMBER")
	if err != nil {
		return err
	}
	defer client.Close()
	group, member := pos[0], pos[1]
	err = client.Remove(ctx, group, member)
	switch {
	case (errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrAmbiguous)) && !groupKnown(ctx, client, group):
		return groupError(err, group)
	case errors.Is(err, api.ErrNotFound):
		return explainf(err, "no member %q in %q; 'parley members %s' lists them", member, group, quoteArg(group))
	case errors.Is(err, api.ErrAmbiguous):
		return explainf(err, "several members of %q match %q; name them by fingerprint ('parley members %s' shows them)", group, member, quoteArg(group))
	case err != nil:
		return groupError(err, group)
	}
	fmt.Fprintf(stdout, "removed %s from %s\n", clean(member), clean(group))
	return nil
}

const leaveUsage = `Usage: parley leave GROUP [--data DIR]

Asks the other members of GROUP to remove you. You are out once one of
them commits it; until then you still receive the group's messages.

` + commonFlags

func runLeave(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("leave", leaveUsage, false, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 1, 1, "GROUP")
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Leave(ctx, pos[0]); err != nil {
		return groupError(err, pos[0])
	}
	fmt.Fprintf(stdout, "asked the members of %s to remove you; you are out once one of them commits it\n", clean(pos[0]))
	return nil
}
