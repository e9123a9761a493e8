// Package cli implements the parley command line.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
)

const usage = `Usage: parley <command> [flags]

Getting started:
  init       make this node's identity and data directory: parley init --name NAME
  run        run the daemon (the network, the groups, the local API)
  demo       start three nodes on loopback, form a group, talk, resolve a fork

Commands that talk to the running daemon:
  id         show this node's identity; --code prints your contact code
  contact    add a contact from their code: parley contact add CODE;
             rename or remove one: parley contact rename|remove CONTACT
  contacts   list your contacts
  group      create a group: parley group create NAME
             or forget one you are out of: parley group forget GROUP
  groups     list your groups
  members    list the members of a group
  invite     add a contact to a group, or print an invite code
             (--approve: you approve each join with it; --approve-by
             members: any member does)
  requests   list the joins waiting for your approval
  approve    add the joiner of a request: parley approve ID (deny ID: not)
  join       join a group with an invite code
  send       send a message, or a file with --file, to a group
  read       show a group's messages; --follow shows new ones as they come
  chat       talk in a group in the terminal
  remove     remove a member from a group
  leave      ask the members of a group to remove you
  status     show peers, and each group's epochs, forks and sync state

Other commands:
  version    show the version of this program
  mls-demo   form an MLS group of four members in this process (no network)
  suites     check and list the MLS cipher suites this build supports
  sim        run the ordering simulator and report its figures (CSV, JSON, SVG)

The daemon's commands find it through the socket in its data directory:
--data DIR, else $PARLEY_DATA, else $XDG_DATA_HOME/parley, else
~/.local/share/parley.
--data DIR and --json may also come before the command:
parley --data DIR groups. Under --json a command that fails prints
{"error":{"code":...,"message":...}} on stdout, besides the line on
stderr: the code is the API's (docs/API.md, "Errors") for an error of
the daemon, else "usage" (a bad command line), "not_running" (no daemon)
or "invalid".
Run 'parley <command> -h' for the flags of a command.
`

// Run runs the parley command line with args (without the program name)
// and returns the process exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	all := args
	args, err := globalFlags(args)
	if err != nil {
		fmt.Fprintf(stderr, "parley: %v\n", err)
		if wantsJSON(all) {
			printJSONError(stdout, err)
		}
		return 1
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	name := args[0]
	switch args[0] {
	case "id":
		err = oneLine(runID(ctx, args[1:], stdout, stderr))
	case "contact":
		name = subcommandName(args, "add", "rename", "remove", "rm")
		err = oneLine(runContact(ctx, args[1:], stdout, stderr))
	case "contacts":
		err = oneLine(runContacts(ctx, args[1:], stdout, stderr))
	case "group":
		name = subcommandName(args, "create", "forget")
		err = oneLine(runGroup(ctx, args[1:], stdout, stderr))
	case "groups":
		err = oneLine(runGroups(ctx, args[1:], stdout, stderr))
	case "members":
		err = oneLine(runMembers(ctx, args[1:], stdout, stderr))
	case "invite":
		err = oneLine(runInvite(ctx, args[1:], stdout, stderr))
	case "requests":
		err = oneLine(runRequests(ctx, args[1:], stdout, stderr))
	case "approve":
		err = oneLine(runDecide(ctx, "approve", args[1:], stdout, stderr))
	case "deny":
		err = oneLine(runDecide(ctx, "deny", args[1:], stdout, stderr))
	case "join":
		err = oneLine(runJoin(ctx, args[1:], stdout, stderr))
	case "send":
		err = oneLine(runSend(ctx, args[1:], stdout, stderr))
	case "read":
		err = oneLine(runRead(ctx, args[1:], stdout, stderr))
	case "chat":
		err = oneLine(runChat(ctx, args[1:], stdout, stderr))
	case "remove":
		err = oneLine(runRemove(ctx, args[1:], stdout, stderr))
	case "leave":
		err = oneLine(runLeave(ctx, args[1:], stdout, stderr))
	case "status":
		err = oneLine(runStatus(ctx, args[1:], stdout, stderr))
	case "init":
		err = oneLine(runInit(ctx, args[1:], stdout, stderr))
	case "run":
		err = oneLine(runRun(ctx, args[1:], stdout, stderr))
	case "demo":
		err = runDemo(ctx, args[1:], stdout)
	case "mls-demo":
		err = runMLSDemo(ctx, args[1:], stdout)
	case "suites":
		err = runSuites(ctx, args[1:], stdout)
	case "sim":
		err = runSim(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		err = runVersion(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err := usageError{fmt.Errorf("unknown command %q; run 'parley help'", args[0])}
		fmt.Fprintf(stderr, "parley: %v\n", err)
		if wantsJSON(args) {
			printJSONError(stdout, err)
		}
		return 1
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "parley %s: %v\n", name, err)
		var na needsAttention
		if wantsJSON(args) && !errors.As(err, &na) {
			printJSONError(stdout, err)
		}
		return 1
	}
	return 0
}

// subcommandName names a command with its subcommand, if one of subs is
// given, for its errors ("contact add").
func subcommandName(args []string, subs ...string) string {
	if len(args) > 1 && slices.Contains(subs, args[1]) {
		return args[0] + " " + args[1]
	}
	return args[0]
}
