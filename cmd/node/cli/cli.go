// Package cli implements the parley command line.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

const usage = `Usage: parley <command> [flags]

Commands:
  demo       start three nodes on loopback, form a group, talk, resolve a fork
  mls-demo   form an MLS group of four members in this process (no network)
  suites     check and list the MLS cipher suites this build supports
  sim        run the ordering simulator and report its figures (CSV, JSON, SVG)

Run 'parley <command> -h' for the flags of a command.
`

// Run runs the parley command line with args (without the program name)
// and returns the process exit status.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 1
	}
	var err error
	switch args[0] {
	case "demo":
		err = runDemo(ctx, args[1:], stdout)
	case "mls-demo":
		err = runMLSDemo(ctx, args[1:], stdout)
	case "suites":
		err = runSuites(ctx, args[1:], stdout)
	case "sim":
		err = runSim(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "parley: unknown command %q; run 'parley help'\n", args[0])
		return 1
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "parley %s: %v\n", args[0], err)
		return 1
	}
	return 0
}
