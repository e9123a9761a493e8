// Command parley is the Parley node: a peer-to-peer MLS group messenger.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/parley-p2p/parley/cmd/node/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
