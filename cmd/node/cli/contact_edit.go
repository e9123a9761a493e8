package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/parley-p2p/parley/cmd/node/api"
)

func runContactRename(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("contact rename", contactUsage, true, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 2, 2, "CONTACT NAME")
	if err != nil {
		return err
	}
	defer client.Close()
	ct, err := client.RenameContact(ctx, pos[0], pos[1])
	switch {
	case errors.Is(err, api.ErrExists):
		return explainf(err, "you already have a contact named %q ('parley contacts' lists them)", pos[1])
	case err != nil:
		return explain(err)
	}
	if c.json {
		return c.printJSON(ct)
	}
	fmt.Fprintf(stdout, "%s is now %s (fingerprint %s)\n", quoteArg(pos[0]), quoteArg(ct.Name), clean(ct.Fingerprint))
	return nil
}

func runContactRemove(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("contact remove", contactUsage, false, stdout, stderr)
	pos, client, err := c.connect(ctx, args, 1, 1, "CONTACT")
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.RemoveContact(ctx, pos[0]); err != nil {
		return explain(err)
	}
	fmt.Fprintf(stdout, "removed the contact %s (the groups it is in keep it: 'parley remove GROUP %s' takes it out of one)\n", quoteArg(pos[0]), quoteArg(pos[0]))
	return nil
}
