package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/cmd/node/node"
	"github.com/parley-p2p/parley/store"
)

const initUsage = `Usage: parley init --name NAME [--data DIR] [--passphrase-file F | --passphrase-env V | --key-file] [--json]

Makes this node's data directory: a new identity (one Ed25519 key, both
the libp2p peer ID and the MLS signature key) and an encrypted store,
sealed under a passphrase (argon2id). On a terminal the passphrase is
asked twice, without echo; a script gives --passphrase-file or
--passphrase-env. 'parley run' needs the same passphrase.

  --name NAME           the display name others see
  --key-file            seal the store under a random key in DIR/key (mode
                        0600) instead of a passphrase, so that 'parley run'
                        needs none: anyone who copies the directory (a
                        backup, a synced folder) can read the store
` + commonFlags + passphraseFlags + jsonFlag

const runUsage = `Usage: parley run [--data DIR] [flags]

Runs the daemon: the libp2p host (TCP and QUIC), LAN discovery, one group
loop per group, and the local API on DIR/parley.sock (mode 0600) that the
other commands use. Stops cleanly on Ctrl-C, SIGINT or SIGTERM.

  --listen ADDRS        comma-separated multiaddrs to listen on (default:
                        where the last run listened, --listen or not, on
                        the same ports; the first time, all interfaces on
                        fresh ports)
  --no-mdns             no LAN discovery
  --dht                 use the Kademlia DHT to find group members on the
                        internet (needs --bootstrap peers)
  --bootstrap ADDRS     comma-separated /p2p/ multiaddrs to connect to
  --relay-service       offer a circuit relay (v2) to others, and answer
                        their AutoNAT checks: for an always-on node with a
                        public address, through which members behind NATs
                        reach each other (and hole punch a direct
                        connection where their NATs allow it); it carries
                        circuits only to or from its groups' members and
                        its contacts
  --relay ADDRS         comma-separated /p2p/ multiaddrs of relays to use
                        when this node is behind a NAT; may be repeated
                        (default: any connected peer that offers a relay)
  --api-tcp ADDR        also serve the API on this 127.0.0.1 address; the
                        token is written to DIR/api-token (mode 0600)
  --metrics ADDR        serve Prometheus metrics on this 127.0.0.1 address
  --update-interval D   refresh this member's keys in every group this
                        often (post-compromise security; default 24h, 0: never)
  --update-after N      and after sending N messages in a group
                        (default 1000, 0: never)
  --log-level LEVEL     trace, debug, info, warn or error (default info);
                        trace is debug with gossipsub's own lines (every
                        RPC); logs go to stderr and never contain secrets
` + commonFlags + passphraseFlags

func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("init", initUsage, true, stdout, stderr)
	name := c.fs.String("name", "", "")
	pfile := c.fs.String("passphrase-file", "", "")
	penv := c.fs.String("passphrase-env", "", "")
	keyFile := c.fs.Bool("key-file", false, "")
	if _, err := c.parse(args, 0, 0, ""); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("give the name others will see: parley init --name NAME")
	}
	if err := node.CheckName(*name); err != nil {
		return fmt.Errorf("%v", err)
	}
	dir, err := dataDir(c.data)
	if err != nil {
		return err
	}
	if err := api.CheckSocketPath(filepath.Join(dir, socketFile)); err != nil {
		return fmt.Errorf("%s cannot hold a parley node: %w", dir, err)
	}
	if _, err := node.ReadStoreSeal(dir); err == nil {
		return fmt.Errorf("%s already holds a parley node; use another --data DIR", dir)
	}
	pass, err := initPassphrase(ctx, *pfile, *penv, *keyFile, stderr)
	if err != nil {
		return err
	}
	defer clear(pass)
	id, err := node.Init(dir, *name, pass, nil)
	switch {
	case errors.Is(err, node.ErrExists):
		return fmt.Errorf("%s already holds a parley node; use another --data DIR", dir)
	case errors.Is(err, node.ErrBadName):
		return fmt.Errorf("%v", err)
	case err != nil:
		return err
	}
	seal, err := node.ReadStoreSeal(dir)
	if err != nil {
		return err
	}
	if c.json {
		return c.printJSON(map[string]any{"data": dir, "name": id.Name, "peer_id": id.PeerID.String(), "fingerprint": id.Fingerprint(), "store": seal})
	}
	fmt.Fprintf(stdout, "made %s for %s\npeer ID      %s\nfingerprint  %s\nstore        sealed by %s\nnext: %s\n",
		dir, id.Name, id.PeerID, id.Fingerprint(), seal.Summary, runHint(dir, *pfile, *penv))
	return nil
}

// runHint is the command that starts the daemon on a store just made:
// with its data directory, and the passphrase from where init read it
// (with neither flag, run asks on the terminal, as init did).
func runHint(dir, pfile, penv string) string {
	hint := "parley run --data " + quoteArg(dir)
	switch {
	case pfile != "":
		hint += " --passphrase-file " + quoteArg(pfile)
	case penv != "":
		hint += " --passphrase-env " + quoteArg(penv)
	}
	return hint
}

// initPassphrase returns the passphrase a new store is sealed with: from
// the flags, else asked on the terminal; nil with --key-file.
func initPassphrase(ctx context.Context, file, env string, keyFile bool, stderr io.Writer) ([]byte, error) {
	pass, err := passphrase(file, env)
	switch {
	case err != nil:
		return nil, err
	case keyFile && pass != nil:
		clear(pass)
		return nil, errors.New("give a passphrase or --key-file, not both")
	case keyFile || pass != nil:
		return pass, nil
	}
	t, ok := stdinTerminal()
	if !ok {
		return nil, fmt.Errorf("%w to ask a passphrase on: give --passphrase-file F or --passphrase-env V, "+
			"or --key-file to keep the store's key in DIR/key (anyone who copies the directory can then read the store)", errNoTerminal)
	}
	return askNewPassphrase(ctx, t, stderr)
}

// runPassphrase returns the passphrase that opens the store in dir, from
// the flags; else, if the store is sealed with one, t is where to ask it
// (nil: the store needs none, or dir holds no store and Open will say so).
func runPassphrase(dir, file, env string) (pass []byte, t terminal, err error) {
	if pass, err = passphrase(file, env); err != nil || pass != nil {
		return pass, nil, err
	}
	if seal, err := node.ReadStoreSeal(dir); err != nil || seal.Protection != node.SealPassphrase {
		return nil, nil, nil
	}
	t, ok := stdinTerminal()
	if !ok {
		return nil, nil, fmt.Errorf("the store in %s is sealed with a passphrase and %w to ask it on: give --passphrase-file F or --passphrase-env V", dir, errNoTerminal)
	}
	return nil, t, nil
}

// openNode opens the node, asking for the passphrase on t (if not nil),
// again after a wrong one, up to passphraseTries times.
func openNode(ctx context.Context, cfg node.Config, t terminal, stderr io.Writer) (*node.Node, error) {
	for try := 1; ; try++ {
		if t != nil {
			pass, err := askPassphrase(ctx, t, stderr, "passphrase for "+cfg.Dir+": ")
			if err != nil {
				return nil, err
			}
			cfg.Passphrase = pass
		}
		n, err := node.Open(ctx, cfg)
		if t != nil {
			clear(cfg.Passphrase)
		}
		if t != nil && try < passphraseTries && errors.Is(err, store.ErrWrongPassphrase) {
			fmt.Fprintln(stderr, "wrong passphrase; try again")
			continue
		}
		return n, err
	}
}

func runRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("run", runUsage, false, stdout, stderr)
	listen := c.fs.String("listen", "", "")
	noMDNS := c.fs.Bool("no-mdns", false, "")
	dht := c.fs.Bool("dht", false, "")
	bootstrap := c.fs.String("bootstrap", "", "")
	relayService := c.fs.Bool("relay-service", false, "")
	var relays listFlag
	c.fs.Var(&relays, "relay", "")
	apiTCP := c.fs.String("api-tcp", "", "")
	metrics := c.fs.String("metrics", "", "")
	update := c.fs.Duration("update-interval", 24*time.Hour, "")
	updateAfter := c.fs.Int("update-after", 1000, "")
	level := c.fs.String("log-level", "info", "")
	pfile := c.fs.String("passphrase-file", "", "")
	penv := c.fs.String("passphrase-env", "", "")
	if _, err := c.parse(args, 0, 0, ""); err != nil {
		return err
	}
	var lvl slog.Level
	trace := *level == "trace"
	if trace {
		lvl = slog.LevelDebug
	} else if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", *level)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	dir, err := dataDir(c.data)
	if err != nil {
		return err
	}
	pass, asker, err := runPassphrase(dir, *pfile, *penv)
	if err != nil {
		return err
	}
	cfg := node.Config{Dir: dir, Passphrase: pass, MDNS: !*noMDNS, DHT: *dht, Logger: log, UpdateInterval: *update, PubSubDebug: trace}
	if *update == 0 {
		cfg.UpdateInterval = -1
	}
	switch {
	case *updateAfter < 0:
		return fmt.Errorf("--update-after %d: want a count of messages, or 0 for never", *updateAfter)
	case *updateAfter == 0:
		cfg.UpdateAfter = -1
	default:
		cfg.UpdateAfter = *updateAfter
	}
	if *listen != "" {
		cfg.Listen = splitList(*listen)
	}
	for _, b := range splitList(*bootstrap) {
		ai, err := peer.AddrInfoFromString(b)
		if err != nil {
			return fmt.Errorf("--bootstrap %q: %v (want /ip4/.../tcp/.../p2p/PEERID)", b, err)
		}
		cfg.Bootstrap = append(cfg.Bootstrap, *ai)
	}
	cfg.RelayService = *relayService
	if cfg.Relays, err = relayInfos(relays); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := openNode(ctx, cfg, asker, stderr)
	clear(pass)
	if err != nil {
		return explainOpen(err, dir)
	}
	defer n.Close()
	srv := api.NewServer(n, log.With("component", "api"))
	sock := filepath.Join(dir, socketFile)
	if err := srv.ListenUnix(sock); err != nil {
		if errors.Is(err, api.ErrAlreadyRunning) {
			return fmt.Errorf("another parley daemon is running on %s", dir)
		}
		return err
	}
	defer srv.Close()
	if *apiTCP != "" {
		token, err := api.NewToken()
		if err != nil {
			return err
		}
		tokenFile := filepath.Join(dir, "api-token")
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			return err
		}
		addr, err := srv.ListenTCP(*apiTCP, token)
		if err != nil {
			return fmt.Errorf("--api-tcp: %v", err)
		}
		log.Info("local API on TCP", "addr", addr.String(), "token_file", tokenFile)
	}
	if *metrics != "" {
		host, _, err := net.SplitHostPort(*metrics)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			return fmt.Errorf("--metrics %q: want a 127.0.0.1:PORT (or [::1]:PORT) address", *metrics)
		}
		ln, err := net.Listen("tcp", *metrics)
		if err != nil {
			return fmt.Errorf("--metrics: %v", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", n.MetricsHandler())
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		log.Info("metrics", "url", "http://"+ln.Addr().String()+"/metrics")
	}
	id, _ := n.Identity(ctx)
	log.Info("parley is running", "name", id.Name, "peer", id.PeerID, "fingerprint", id.Fingerprint, "api", sock,
		"store", n.StoreSeal().Summary)
	for _, a := range id.Addrs {
		log.Info("listening", "addr", a)
	}
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("API shutdown", "err", err)
	}
	return n.Close()
}

// explainOpen turns an error opening the node into a line to act on.
func explainOpen(err error, dir string) error {
	switch {
	case errors.Is(err, node.ErrNotInitialized):
		return fmt.Errorf("%s holds no parley node; make one with 'parley init --name NAME --data %s'", dir, dir)
	case errors.Is(err, store.ErrLocked):
		return fmt.Errorf("another parley daemon is running on %s", dir)
	case errors.Is(err, store.ErrNeedsKeyFile):
		return fmt.Errorf("the store is sealed with the key file %s, not a passphrase: drop --passphrase-file and --passphrase-env", node.KeyFile(dir))
	case errors.Is(err, store.ErrWrongPassphrase):
		return errors.New("wrong passphrase")
	case errors.Is(err, store.ErrEncrypted), errors.Is(err, store.ErrNoKey), errors.Is(err, store.ErrNeedsPassphrase):
		return errors.New("the store is sealed with a passphrase: give --passphrase-file or --passphrase-env, or run on a terminal to be asked")
	case errors.Is(err, store.ErrWrongKeyFile), errors.Is(err, store.ErrBadKeyFile):
		return fmt.Errorf("the key file %s does not open the store", node.KeyFile(dir))
	case errors.Is(err, store.ErrCorrupt):
		return fmt.Errorf("the store in %s is damaged: %v", dir, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, store.ErrNoSpace):
		return fmt.Errorf("the disk holding %s is full: free some space on it and start again (nothing was lost: %v)", dir, err)
	}
	return err
}

// relayInfos reads --relay addresses; those of one relay (its TCP and
// QUIC addresses, say) make one relay.
func relayInfos(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, r := range addrs {
		m, err := ma.NewMultiaddr(r)
		if err == nil {
			_, err = peer.AddrInfoFromP2pAddr(m)
		}
		if err != nil {
			return nil, fmt.Errorf("--relay %q: %v (want /ip4/.../tcp/.../p2p/PEERID)", r, err)
		}
		mas = append(mas, m)
	}
	return peer.AddrInfosFromP2pAddrs(mas...)
}

// listFlag is a flag that may be repeated, each time with a
// comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, splitList(s)...)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
