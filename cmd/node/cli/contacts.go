package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/node"
	"github.com/parley-p2p/parley/store"
)

const idUsage = `Usage: parley id [--code] [--json] [--data DIR] [--passphrase-file F | --passphrase-env V]

Shows this node's name, peer ID, fingerprint (the safety number to compare
with the people you talk to) and listening addresses.

With no daemon running, it reads the identity from the data directory
(no addresses then): a store sealed by a passphrase needs it, asked on
the terminal or given as to 'parley run'.

  --code       print only the contact code, for someone to add you with
               'parley contact add CODE' (needs the daemon)
` + jsonFlag + commonFlags + passphraseFlags

func runID(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("id", idUsage, true, stdout, stderr)
	code := c.fs.Bool("code", false, "")
	pfile := c.fs.String("passphrase-file", "", "")
	penv := c.fs.String("passphrase-env", "", "")
	if _, err := c.parse(args, 0, 0, ""); err != nil {
		return err
	}
	client, err := c.dial(ctx)
	if errors.Is(err, api.ErrNotRunning) && !*code {
		return c.offlineID(ctx, *pfile, *penv, err)
	}
	if err != nil {
		return explain(err)
	}
	defer client.Close()
	if *code {
		cc, err := client.ContactCode(ctx)
		if err != nil {
			return explain(err)
		}
		if c.json {
			return c.printJSON(map[string]string{"code": cc})
		}
		_, err = fmt.Fprintln(stdout, cc)
		return err
	}
	id, err := client.Identity(ctx)
	if err != nil {
		return explain(err)
	}
	if c.json {
		return c.printJSON(id)
	}
	tw := newTable(stdout)
	fmt.Fprintf(tw, "name\t%s\n", clean(id.Name))
	fmt.Fprintf(tw, "peer id\t%s\n", clean(id.PeerID))
	fmt.Fprintf(tw, "fingerprint\t%s\n", clean(id.Fingerprint))
	label := "addresses"
	if len(id.Addrs) == 0 {
		fmt.Fprintf(tw, "%s\t(none: is the node offline?)\n", label)
	}
	for _, a := range id.Addrs {
		fmt.Fprintf(tw, "%s\t%s\n", label, clean(a))
		label = ""
	}
	return tw.Flush()
}

// offlineID prints the identity read from the data directory, for when
// no daemon runs (notRunning, returned if the directory holds no node).
func (c *command) offlineID(ctx context.Context, pfile, penv string, notRunning error) error {
	dir, err := dataDir(c.data)
	if err != nil {
		return err
	}
	if _, err := node.ReadStoreSeal(dir); err != nil {
		return notRunning
	}
	pass, t, err := runPassphrase(dir, pfile, penv)
	if err != nil {
		return err
	}
	if t != nil {
		if pass, err = askPassphrase(ctx, t, c.stderr, "passphrase for "+dir+": "); err != nil {
			return err
		}
	}
	id, err := node.ReadIdentity(ctx, dir, pass)
	clear(pass)
	switch {
	case errors.Is(err, store.ErrWrongPassphrase):
		return errors.New("wrong passphrase")
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("the store in %s is in use by another process; try again", dir)
	case err != nil:
		return err
	}
	v := api.Identity{Name: id.Name, PeerID: id.PeerID.String(), Fingerprint: id.Fingerprint(), Addrs: []string{}}
	if c.json {
		return c.printJSON(v)
	}
	tw := newTable(c.stdout)
	fmt.Fprintf(tw, "name\t%s\n", clean(v.Name))
	fmt.Fprintf(tw, "peer id\t%s\n", v.PeerID)
	fmt.Fprintf(tw, "fingerprint\t%s\n", v.Fingerprint)
	fmt.Fprintf(tw, "addresses\t(none: the daemon is not running; start it with 'parley run --data %s')\n", quoteArg(dir))
	return tw.Flush()
}

const contactUsage = `Usage: parley contact add CODE [--name NAME] [--json] [--data DIR]
       parley contact rename CONTACT NAME [--json] [--data DIR]
       parley contact remove CONTACT [--data DIR]

add adds a contact from the code they printed with 'parley id --code'.
Compare the fingerprint it shows with theirs before you invite them.

rename calls a contact (by name or peer ID) by another name on this node:
in 'parley contacts' and 'parley invite'. In a group's members each
member shows the name it chose.

remove forgets a contact. It stays in the groups it is in: to take it out
of one, 'parley remove GROUP NAME'.

  --name NAME  call the contact NAME (default: the name they chose)
` + jsonFlag + commonFlags

func runContact(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("missing subcommand (usage: parley contact add CODE | rename CONTACT NAME | remove CONTACT)")
	}
	switch args[0] {
	case "add":
		return runContactAdd(ctx, args[1:], stdout, stderr)
	case "rename":
		return runContactRename(ctx, args[1:], stdout, stderr)
	case "remove", "rm":
		return runContactRemove(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, contactUsage)
		return nil
	}
	if strings.HasPrefix(args[0], "-") {
		return fmt.Errorf("missing subcommand (usage: parley contact add CODE | rename CONTACT NAME | remove CONTACT)")
	}
	return fmt.Errorf("unknown subcommand %q (usage: parley contact add CODE | rename CONTACT NAME | remove CONTACT)", args[0])
}

func runContactAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("contact add", contactUsage, true, stdout, stderr)
	name := c.fs.String("name", "", "")
	pos, client, err := c.connect(ctx, args, 1, 1, "CODE")
	if err != nil {
		return err
	}
	defer client.Close()
	ct, err := client.AddContact(ctx, pos[0], *name)
	switch {
	case errors.Is(err, api.ErrBadCode):
		return explainf(err, "that is not a valid contact code (it may be cut short or mistyped); ask for it again, they print it with 'parley id --code'")
	case errors.Is(err, api.ErrExists) && *name != "":
		return explainf(err, "you already have a contact named %q; pick another with --name", *name)
	case errors.Is(err, api.ErrExists):
		return explainf(err, "you already have a contact by that name; pick another with --name NAME ('parley contacts' lists them)")
	case err != nil:
		return explain(err)
	}
	if c.json {
		return c.printJSON(ct)
	}
	fmt.Fprintf(stdout, "added %s, fingerprint %s\n", clean(ct.Name), clean(ct.Fingerprint))
	fmt.Fprintf(stdout, "compare it with theirs, then: parley invite GROUP %s\n", quoteArg(ct.Name))
	return nil
}

const contactsUsage = `Usage: parley contacts [--json] [--data DIR]

Lists your contacts: name, whether their node is online (and whether only
through a relay), fingerprint.

` + jsonFlag + commonFlags

func runContacts(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("contacts", contactsUsage, true, stdout, stderr)
	_, client, err := c.connect(ctx, args, 0, 0, "")
	if err != nil {
		return err
	}
	defer client.Close()
	list, err := client.Contacts(ctx)
	if err != nil {
		return explain(err)
	}
	_, err = printList(c, list, "no contacts yet; add one with 'parley contact add CODE'", "NAME\tSTATUS\tFINGERPRINT",
		func(ct api.Contact) string {
			return fmt.Sprintf("%s\t%s\t%s", clean(ct.Name), onOffVia(ct.Online, ct.Via), clean(ct.Fingerprint))
		})
	return err
}

// quoteArg quotes s for a shell if it needs it.
func quoteArg(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/@", r))
	}) < 0 {
		return s
	}
	return "'" + clean(strings.ReplaceAll(s, "'", `'\''`)) + "'"
}
