// Command interop serves Parley's MLS implementation over the MLSClient
// gRPC service of the MLS interop test framework, for the official
// test-runner (github.com/mlswg/mls-implementations, interop/test-runner)
// and Parley's own driver (cmd/interop/driver).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/parley-p2p/parley/cmd/interop/server"
	"github.com/parley-p2p/parley/mls/framing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
}

const usage = `Usage: interop [-host ADDR] [-port N] [-padding none|N] [-grease=false]

Serves Parley's MLS over the MLSClient gRPC service of the MLS interop
test framework until interrupted. Point the official test-runner at it
with -client HOST:PORT.

  -host ADDR      address to listen on (default 127.0.0.1)
  -port N         TCP port to listen on; 0 picks a free one (default 50051)
  -padding P      how PrivateMessage content is padded: none, or a block
                  size N in bytes, to a multiple of which it is padded
                  (default 32); some peers cannot read padded handshake
                  messages
  -grease=false   put no GREASE values (RFC 9420 §13.5) in KeyPackages,
                  leaves and GroupInfos (default: put them in)
`

// parsePadding reads the -padding flag: "none", or a block size.
func parsePadding(s string) (framing.PaddingFunc, error) {
	if s == "none" {
		return func(int) int { return 0 }, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1<<16 {
		return nil, fmt.Errorf("padding %q: want none or a block size from 1 to 65536", s)
	}
	return framing.PadTo(n), nil
}

// run parses the flags and serves until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("interop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage) }
	host := fs.String("host", "127.0.0.1", "")
	port := fs.Int("port", 50051, "")
	paddingArg := fs.String("padding", "32", "")
	grease := fs.Bool("grease", true, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	padding, err := parsePadding(*paddingArg)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("port %d out of range", *port)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	logger.Info("serving MLSClient", "name", server.Name, "addr", ln.Addr().String(), "padding", *paddingArg, "grease", *grease)
	return server.Serve(ctx, ln, logger, server.WithPadding(padding), server.WithGrease(*grease))
}
