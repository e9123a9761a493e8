package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/parley-p2p/parley/cmd/node/api"
)

// The commands that talk to the daemon share this plumbing: flags parsed
// anywhere on the line (parley send GROUP --file PATH), --data and
// --json, a Client on the daemon's socket, and errors turned into one
// line that says what to do.

// commonFlags is the help text of the flags every daemon command takes.
const commonFlags = `  --data DIR   data directory of the daemon (default $PARLEY_DATA, else
               $XDG_DATA_HOME/parley, else ~/.local/share/parley)
`

// jsonFlag is the help line of --json.
const jsonFlag = "  --json       print JSON instead of text\n"

// command is one daemon command being run.
type command struct {
	name   string // as typed: "send", "contact add"
	usage  string // the -h text
	fs     *flag.FlagSet
	data   string
	json   bool
	stdout io.Writer
	stderr io.Writer
}

// newCommand returns a command with --data and, if withJSON, --json.
func newCommand(name, usage string, withJSON bool, stdout, stderr io.Writer) *command {
	c := &command{name: name, usage: usage, stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet(name, flag.ContinueOnError)
	c.fs.SetOutput(io.Discard)
	c.fs.Usage = func() {}
	c.fs.StringVar(&c.data, "data", "", "")
	if withJSON {
		c.fs.BoolVar(&c.json, "json", false, "")
	}
	return c
}

// parse parses args, flags and arguments in any order ("--" ends the
// flags), and checks there are between min and max arguments (max < 0:
// no limit); names describes them for the error ("GROUP TEXT"). -h
// prints the usage on stdout and returns flag.ErrHelp.
func (c *command) parse(args []string, min, max int, names string) ([]string, error) {
	var pos []string
	for {
		if err := c.fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(c.stdout, c.usage)
				return nil, err
			}
			return nil, usageError{fmt.Errorf("%w (run 'parley %s -h')", err, c.name)}
		}
		rest := c.fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		missing := strings.Fields(names)
		what := "arguments"
		if len(pos) < len(missing) {
			what = missing[len(pos)]
		}
		return nil, usageError{fmt.Errorf("missing %s (usage: parley %s %s)", what, c.name, names)}
	case max >= 0 && len(pos) > max:
		return nil, usageError{fmt.Errorf("unexpected argument %q (usage: parley %s)", pos[max], strings.TrimSpace(c.name+" "+names))}
	}
	return pos, nil
}

// connect parses args (min to max arguments, named names in the usage
// errors) and connects to the daemon; the caller closes the client.
func (c *command) connect(ctx context.Context, args []string, min, max int, names string) ([]string, *api.Client, error) {
	pos, err := c.parse(args, min, max, names)
	if err != nil {
		return nil, nil, err
	}
	client, err := c.dial(ctx)
	if err != nil {
		return nil, nil, explain(err)
	}
	return pos, client, nil
}

// dial connects to the daemon of the data directory.
func (c *command) dial(ctx context.Context) (*api.Client, error) {
	path, err := socketPath(c.data)
	if err != nil {
		return nil, err
	}
	client, err := api.Dial(ctx, path)
	if errors.Is(err, api.ErrNotRunning) && c.data != "" {
		// The daemon to start is the one of this --data, which 'parley
		// run' alone would not find.
		if dir, derr := dataDir(c.data); derr == nil {
			return nil, hintedError{err, strings.Replace(err.Error(), "'parley run'", "'parley run --data "+quoteArg(dir)+"'", 1)}
		}
	}
	return client, err
}

// hintedError is an error with a message of the CLI's own.
type hintedError struct {
	err error
	msg string
}

func (e hintedError) Error() string { return e.msg }
func (e hintedError) Unwrap() error { return e.err }

// printJSON prints v as one indented JSON document.
func (c *command) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// explain turns an error from the daemon into one line a person can act
// on; the errors that name a group, contact or member are explained by
// the caller first (see groupError).
func explain(err error) error {
	var apiErr *api.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, api.ErrNotRunning):
		return err // says where it looked and what to run
	case errors.Is(err, api.ErrClosed):
		return explainf(err, "the daemon closed the connection; is it still running? ('parley status' tells)")
	case errors.Is(err, context.Canceled):
		return explainf(err, "interrupted")
	case errors.Is(err, api.ErrUnavailable):
		return explainf(err, "%s; the peers this needs are offline, try again when they are online ('parley status' shows peers)", message(err))
	case errors.As(err, &apiErr) && apiErr.Code == api.CodeInternal:
		return explainf(err, "the daemon failed: %s", message(err))
	}
	return explainf(err, "%s", message(err))
}

// explained is an error of the daemon put in words a person can act
// on: it prints as the explanation and unwraps to the daemon's error,
// whose code --json prints.
type explained struct {
	text  string
	cause error
}

func (e *explained) Error() string { return e.text }
func (e *explained) Unwrap() error { return e.cause }

// explainf explains cause with a formatted text.
func explainf(cause error, format string, args ...any) error {
	return &explained{text: fmt.Sprintf(format, args...), cause: cause}
}

// usageError is a command line the command cannot run: a bad flag, a
// missing or extra argument. Under --json its code is "usage".
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// message returns err's text on one line, so that a daemon's message
// cannot break the one-line rule of the CLI's errors.
func message(err error) string {
	return clean(strings.Join(strings.Fields(err.Error()), " "))
}

// oneLine makes sure an error prints on one line.
func oneLine(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) || !strings.ContainsAny(err.Error(), "\r\n") {
		return err
	}
	return &explained{text: message(err), cause: err}
}

// groupError explains an error of a request that names group.
func groupError(err error, group string) error {
	switch {
	case errors.Is(err, api.ErrNotFound):
		return explainf(err, "no group named %q; 'parley groups' lists yours", group)
	case errors.Is(err, api.ErrAmbiguous):
		return explainf(err, "several groups are named %q; name it by its id ('parley groups' shows them)", group)
	case errors.Is(err, api.ErrNotMember):
		return explainf(err, "you are not a member of %q (yet, or any more); 'parley groups' shows its state", group)
	}
	return explain(err)
}

// groupKnown tells whether group names exactly one of the node's
// groups, to tell which of two names a not_found or ambiguous error is
// about.
func groupKnown(ctx context.Context, client api.Backend, group string) bool {
	groups, err := client.Groups(ctx)
	if err != nil {
		return true // cannot tell: blame the other name
	}
	n := 0
	for _, g := range groups {
		if g.ID == group {
			return true
		}
		if g.Name == group {
			n++
		}
	}
	return n == 1
}

// printList prints the list a command read: under --json as a JSON array
// (none as []); else, when there is none and empty is given, that line;
// else a table of header and one row per item. done reports that the
// list went as JSON or as the empty line, so the caller adds nothing.
func printList[T any](c *command, list []T, empty, header string, row func(T) string) (done bool, err error) {
	if c.json {
		if list == nil {
			list = []T{}
		}
		return true, c.printJSON(list)
	}
	if len(list) == 0 && empty != "" {
		fmt.Fprintln(c.stdout, empty)
		return true, nil
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, header)
	for _, x := range list {
		fmt.Fprintln(tw, row(x))
	}
	return false, tw.Flush()
}
