// Package node is a running Parley node: it opens the node's store, runs
// its libp2p host, and drives one ordering loop per group, carrying the
// loops' decisions to disk, to the network and to the local API (it
// implements api.Backend).
//
// Each group has a goroutine that owns its ordering.Loop; everything that
// touches a loop (network input, timers, user commands) runs there, one
// event at a time. An event's changes are written to the store in one
// transaction before anything it decided leaves the node.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
	"github.com/parley-p2p/parley/store"
)

// Config configures a node.
type Config struct {
	// Dir is the data directory made by Init.
	Dir string
	// Passphrase unlocks the store if it was made with one; otherwise the
	// key file in Dir does (see ReadStoreSeal to tell which).
	Passphrase []byte
	// Listen are the libp2p listen multiaddrs (default: all interfaces,
	// TCP and QUIC, IPv4 and IPv6, random ports).
	Listen []string
	// MDNS turns on LAN discovery.
	MDNS bool
	// DHT turns on the Kademlia DHT and per-group rendezvous.
	DHT       bool
	Bootstrap []peer.AddrInfo
	// RelayService makes the node a circuit relay v2 and an AutoNAT
	// server for others (p2p.WithRelayService): for always-on nodes with a
	// public address.
	RelayService bool
	// Relays are the relays this node reserves a slot on when AutoNAT
	// finds it behind a NAT (default: any connected peer that offers the
	// service).
	Relays []peer.AddrInfo
	// PubSubDebug passes gossipsub's own debug lines (every RPC) to the
	// logger (p2p.WithPubSubDebug).
	PubSubDebug bool
	// Ordering overrides the ordering timings (zero fields: defaults).
	Ordering ordering.Config
	// UpdateInterval is how often this member refreshes its leaf
	// (post-compromise security); default 24h, negative: never.
	UpdateInterval time.Duration
	// UpdateAfter also refreshes the leaf after this many messages sent
	// in a group; default 1000, negative: never.
	UpdateAfter int
	// TickInterval is how often the group loops' timers run (default
	// 100ms).
	TickInterval time.Duration
	Logger       *slog.Logger
}

// Node is a running node.
type Node struct {
	cfg Config
	// kpLimit rations the fresh KeyPackages served to peers.
	kpLimit keyPackageLimiter
	log     *slog.Logger
	st      *store.Store
	id      *Identity
	p2p     *p2p.Node
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	// trackMu orders goBackground's wg.Add against Close's wg.Wait: once
	// ctx is canceled and trackMu passed, nothing more is started.
	trackMu sync.Mutex
	files   string // directory of received files

	// contactMu orders the changes of the contact book (add, rename,
	// remove), which check names against each other.
	contactMu sync.Mutex

	joinMu sync.Mutex // serializes joins and group creation
	mu     sync.Mutex
	groups map[string]*groupRunner // by hex group id
	subs   map[*subscriber]struct{}
	// pendingSync answers sync requests from peers: the request id given
	// to the loop -> the channel the handler waits on.
	pendingSync map[uint64]chan []byte
	nextSync    uint64
	stats       counters
	latency     histogram
	metrics     registry
}

// key file and store directory inside the data directory.
const (
	keyFileName  = "key"
	storeDirName = "store"
	filesDirName = "files"
)

// Errors of Init and Open.
var (
	ErrExists         = errors.New("node: data directory already initialized")
	ErrNotInitialized = errors.New("node: data directory not initialized; run 'parley init'")
)

const identityKey = "node"

// openDataStore opens the store of the data directory dir, made (create) or
// existing (else ErrNotInitialized), sealed by passphrase or, if it is
// empty, by the key file (see storeOptions).
func openDataStore(dir string, passphrase []byte, create bool, log *slog.Logger) (*store.Store, error) {
	if !create {
		if _, err := os.Stat(filepath.Join(dir, storeDirName)); err != nil {
			return nil, fmt.Errorf("%w (%s)", ErrNotInitialized, dir)
		}
	}
	opts, err := storeOptions(dir, passphrase, create, log)
	if err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(dir, storeDirName), opts...)
}

func storeOptions(dir string, passphrase []byte, create bool, log *slog.Logger) ([]store.Option, error) {
	opts := []store.Option{store.WithLogger(log)}
	if len(passphrase) > 0 {
		return append(opts, store.WithPassphrase(passphrase)), nil
	}
	kf := filepath.Join(dir, keyFileName)
	if create {
		if _, err := os.Stat(kf); err == nil {
			return nil, fmt.Errorf("%w: %s exists", ErrExists, kf)
		}
		key := make([]byte, 32)
		if _, err := randRead(key); err != nil {
			return nil, err
		}
		if err := os.WriteFile(kf, key, 0o600); err != nil {
			return nil, fmt.Errorf("node: writing the key file: %w", err)
		}
	}
	return append(opts, store.WithKeyFile(kf)), nil
}

// Init makes a data directory with a new identity. With a passphrase the
// store is sealed under it (argon2id); without one, under a random key in
// the key file DIR/key (mode 0600), which anyone who copies the directory
// can use to read the store: the parley command makes such a store only
// when asked to with --key-file.
func Init(dir, name string, passphrase []byte, log *slog.Logger) (*Identity, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := CheckName(name); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dir, storeDirName)); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrExists, dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("node: making the data directory: %w", err)
	}
	id, err := NewIdentity(name)
	if err != nil {
		return nil, err
	}
	st, err := openDataStore(dir, passphrase, true, log)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	b := st.NewBatch()
	b.PutIdentity(identityKey, id.encode())
	if err := st.Write(context.Background(), b); err != nil {
		return nil, err
	}
	return id, nil
}

// ReadIdentity reads the identity in the store of the data directory
// dir, with the passphrase it is sealed by (nil: its key file), without
// starting anything: for 'parley id' while no daemon runs. It fails with
// store.ErrLocked while a daemon has the store open.
func ReadIdentity(ctx context.Context, dir string, passphrase []byte) (*Identity, error) {
	st, err := openDataStore(dir, passphrase, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	raw, err := st.Identity(ctx, identityKey)
	if err != nil {
		return nil, fmt.Errorf("node: reading the identity: %w", err)
	}
	return decodeIdentity(raw)
}

// Open opens the node's data directory and starts it: its host, and a
// loop for every group it is in. A store whose tables are damaged is
// salvaged (see salvage.go): the node starts with its identity and
// contacts, and its groups listed as damaged.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.UpdateInterval == 0 {
		cfg.UpdateInterval = 24 * time.Hour
	}
	if cfg.UpdateAfter == 0 {
		cfg.UpdateAfter = 1000
	}
	st, err := openNodeStore(ctx, cfg.Dir, cfg.Passphrase, cfg.Logger)
	if err != nil {
		return nil, err
	}
	cfg.Passphrase = nil // the store keeps no copy; neither does the node
	raw, err := st.Identity(ctx, identityKey)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("node: reading the identity: %w", err)
	}
	id, err := decodeIdentity(raw)
	if err != nil {
		st.Close()
		return nil, err
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger.With("peer", id.PeerID.String()), st: st, id: id,
		files: filepath.Join(cfg.Dir, filesDirName), groups: map[string]*groupRunner{},
		subs: map[*subscriber]struct{}{}, pendingSync: map[uint64]chan []byte{},
	}
	if err := os.MkdirAll(n.files, 0o700); err != nil {
		st.Close()
		return nil, err
	}
	n.ctx, n.stop = context.WithCancel(context.Background())
	if err := n.startNetwork(ctx); err != nil {
		n.stop()
		st.Close()
		return nil, err
	}
	if err := n.loadGroups(ctx); err != nil {
		n.Close()
		return nil, err
	}
	if err := n.applySalvageMarks(ctx); err != nil {
		n.Close()
		return nil, err
	}
	n.goBackground(n.welcomeLoop)
	n.goBackground(n.inviteLoop)
	n.goBackground(n.connectLoop)
	if err := n.watchPeers(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// goBackground runs f in a goroutine that Close waits for; f should end
// soon after n.ctx is canceled. Once the node is closing, f does not run.
func (n *Node) goBackground(f func()) {
	n.trackMu.Lock()
	defer n.trackMu.Unlock()
	if n.ctx.Err() != nil {
		return
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Close stops the node: its groups (each saves its snapshots), the host
// and the store.
func (n *Node) Close() error {
	n.stop()
	// A barrier: no goBackground starts after this, so wg.Wait below
	// cannot race with its wg.Add.
	n.trackMu.Lock()
	n.trackMu.Unlock()
	n.mu.Lock()
	runners := make([]*groupRunner, 0, len(n.groups))
	for _, g := range n.groups {
		runners = append(runners, g)
	}
	n.mu.Unlock()
	for _, g := range runners {
		g.close()
	}
	// The background loops use the host (a closed one has no Host): they
	// end first, on the canceled context.
	n.wg.Wait()
	var errs []error
	if n.p2p != nil {
		errs = append(errs, n.p2p.Close())
	}
	errs = append(errs, n.st.Close())
	return errors.Join(errs...)
}

// Self returns the node's identity.
func (n *Node) Self() *Identity { return n.id }

// P2P returns the node's host (for tests and status).
func (n *Node) P2P() *p2p.Node { return n.p2p }

// mlsConfig is the MLS policy of Parley groups. GREASE is on: the
// GroupInfos and external-commit leaves a node makes carry GREASE values
// (RFC 9420 §13.5), which keeps its peers tolerant of unknown values.
func (n *Node) mlsConfig() *group.Config {
	return &group.Config{ValidateCredential: ValidateCredential, Grease: true}
}

// orderingConfig is the ordering configuration of a group loop that reads
// what it saved back through a.
func (n *Node) orderingConfig(a *archive) ordering.Config {
	c := n.cfg.Ordering
	c.MLS = n.mlsConfig()
	c.Archive = a
	if n.cfg.UpdateInterval > 0 {
		c.UpdateInterval = n.cfg.UpdateInterval
	}
	if n.cfg.UpdateAfter > 0 {
		c.UpdateAfter = n.cfg.UpdateAfter
	}
	return c
}

// retention is the groups' ordering retention.
func (n *Node) retention() int {
	if n.cfg.Ordering.Retention > 0 {
		return n.cfg.Ordering.Retention
	}
	return 64
}

var _ api.Backend = (*Node)(nil)
