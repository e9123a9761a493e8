package p2p

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/discovery/mdns"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// Node is one Parley peer: a libp2p host with gossipsub, discovery and the
// request/response protocols. New configures it, Start brings it up, Close
// takes it down; a Node is not restarted after Close.
type Node struct {
	// Configuration, fixed by New.
	key              crypto.PrivKey
	log              *slog.Logger
	listen           []string
	mdnsOn           bool
	mdnsName         string
	bootstrap        []peer.AddrInfo
	dhtMode          DHTMode
	book             PeerBook
	relayService     bool
	relayKnown       func(peer.ID) bool
	staticRelays     []peer.AddrInfo
	forceReach       network.Reachability // private: no AutoNAT (loopback tests, where it cannot tell)
	natPortMap       bool
	connLow          int
	connHigh         int
	rcMemory         int64
	rcFDs            int
	gossipLimit      int
	queues           QueueSizes
	gossipParams     pubsub.GossipSubParams
	scoreEvery       time.Duration
	validatorTimeout time.Duration
	streams          StreamLimits
	redialEvery      time.Duration
	rendezvousEvery  time.Duration
	pubsubDebug      bool
	livenessEvery    time.Duration
	metricsReg       prometheus.Registerer // nil: no metrics (WithMetrics)

	// Running services, set by Start.
	host   host.Host
	ps     *pubsub.PubSub
	kad    *dht.IpfsDHT
	mdns   mdns.Service
	tracer *dropTracer
	gossip *gossipMetrics // with WithMetrics, registered while running
	rr     *reqResp
	scores atomic.Pointer[map[peer.ID]float64]
	reach  atomic.Pointer[Reachability]

	mu       sync.Mutex // guards started, closed, topics, left
	started  bool
	closed   bool
	topics   map[string]*Topic
	left     map[string]time.Time // when each topic was last left
	ctx      context.Context      // lives from Start to Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup // background goroutines, started with goTracked
	trackMu  sync.Mutex     // orders goTracked against Close
	watch    chan *watcher
	unwatch  chan *watcher
	topicEvt chan Event
	loopDone chan struct{}
	stats    counters
}

// New configures a node with the persistent identity key. It starts nothing.
func New(key crypto.PrivKey, opts ...Option) (*Node, error) {
	if key == nil {
		return nil, ErrNoIdentity
	}
	n := &Node{
		key:              key,
		log:              slog.New(slog.DiscardHandler),
		listen:           DefaultListenAddrs(),
		mdnsOn:           true,
		mdnsName:         DefaultMDNSServiceName,
		dhtMode:          DHTAuto,
		connLow:          32,
		connHigh:         64,
		rcMemory:         256 << 20,
		rcFDs:            512,
		gossipLimit:      DefaultGossipSizeLimit,
		queues:           DefaultQueueSizes,
		gossipParams:     GossipParams(),
		scoreEvery:       time.Second,
		validatorTimeout: 5 * time.Second,
		streams:          DefaultStreamLimits,
		redialEvery:      time.Minute,
		rendezvousEvery:  time.Minute,
		livenessEvery:    5 * time.Second,
		topics:           make(map[string]*Topic),
		left:             make(map[string]time.Time),
		watch:            make(chan *watcher),
		unwatch:          make(chan *watcher),
		topicEvt:         make(chan Event, 64),
		loopDone:         make(chan struct{}),
	}
	for _, opt := range opts {
		if err := opt(n); err != nil {
			return nil, err
		}
	}
	n.tracer = &dropTracer{c: &n.stats}
	n.rr = newReqResp(n)
	return n, nil
}

// DefaultMDNSServiceName is the mDNS service Parley nodes announce.
const DefaultMDNSServiceName = "_parley._udp"

// DefaultListenAddrs listens on every IPv4 and IPv6 interface, TCP and QUIC.
func DefaultListenAddrs() []string {
	return []string{
		"/ip4/0.0.0.0/tcp/0",
		"/ip4/0.0.0.0/udp/0/quic-v1",
		"/ip6/::/tcp/0",
		"/ip6/::/udp/0/quic-v1",
	}
}

// Start brings up the host, gossipsub and discovery, and redials known
// peers. ctx bounds the start-up only; the node runs until Close.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrClosed
	}
	if n.started {
		return ErrAlreadyStarted
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if err := n.startServices(ctx); err != nil {
		n.cancel()
		n.stopServices()
		return err
	}
	n.started = true
	return nil
}

func (n *Node) startServices(ctx context.Context) error {
	if err := checkListenFree(n.listen); err != nil {
		return err
	}
	h, err := n.newHost()
	if err != nil {
		return err
	}
	n.host = h
	sub, err := h.EventBus().Subscribe([]any{
		new(event.EvtPeerConnectednessChanged),
		new(event.EvtPeerIdentificationCompleted),
		new(event.EvtLocalReachabilityChanged),
		new(event.EvtHostReachableAddrsChanged),
	}, eventbus.BufSize(eventBusBuffer))
	if err != nil {
		return fmt.Errorf("p2p: event bus: %w", err)
	}
	if n.metricsReg != nil {
		if n.gossip, err = registerGossipMetrics(n.metricsReg); err != nil {
			sub.Close()
			return err
		}
	}
	if n.ps, err = n.newPubSub(); err != nil {
		sub.Close()
		return err
	}
	n.rr.start()
	if n.kad != nil {
		if err := n.kad.Bootstrap(n.ctx); err != nil {
			sub.Close()
			return fmt.Errorf("p2p: DHT bootstrap: %w", err)
		}
	}
	if n.mdnsOn {
		n.mdns = mdns.NewMdnsService(h, n.mdnsName, mdnsNotifee{n})
		if err := n.mdns.Start(); err != nil {
			sub.Close()
			return fmt.Errorf("p2p: mDNS: %w", err)
		}
	}
	known := n.loadKnownPeers(ctx)
	go n.loop(sub, known)
	n.goTracked(n.liveness)
	n.dialAll(append(n.bootstrapPeers(), known...))
	return nil
}

// stopServices closes whatever startServices opened. Called with n.mu held.
func (n *Node) stopServices() error {
	if n.gossip != nil {
		n.metricsReg.Unregister(n.gossip)
		n.gossip = nil
	}
	if n.mdns != nil {
		n.mdns.Close()
	}
	n.wg.Wait()
	if n.kad != nil {
		n.kad.Close()
	}
	if n.host != nil {
		if err := n.host.Close(); err != nil {
			return fmt.Errorf("p2p: close host: %w", err)
		}
	}
	return nil
}

// Close leaves every topic, stops discovery and closes the host.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	started := n.started
	topics := make([]*Topic, 0, len(n.topics))
	for _, t := range n.topics {
		topics = append(topics, t)
	}
	n.mu.Unlock()
	if !started {
		return nil
	}
	for _, t := range topics {
		t.Leave()
	}
	// Once ctx is cancelled and trackMu passed, goTracked starts nothing,
	// so wg.Wait cannot race with wg.Add.
	n.cancel()
	n.trackMu.Lock()
	n.trackMu.Unlock()
	if n.mdns != nil {
		n.mdns.Close()
		n.mdns = nil
	}
	<-n.loopDone
	n.wg.Wait()
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopServices()
}

// goTracked runs f in a goroutine that Close waits for, unless the node is
// closing, in which case f does not run.
func (n *Node) goTracked(f func()) bool {
	n.trackMu.Lock()
	defer n.trackMu.Unlock()
	if n.ctx.Err() != nil {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// running returns ErrNotStarted or ErrClosed unless the node is up.
func (n *Node) running() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case n.closed:
		return ErrClosed
	case !n.started:
		return ErrNotStarted
	}
	return nil
}

// ID returns the node's peer ID (valid before Start).
func (n *Node) ID() peer.ID {
	id, err := peer.IDFromPrivateKey(n.key)
	if err != nil {
		panic(fmt.Sprintf("p2p: identity key without peer ID: %v", err))
	}
	return id
}

// Host returns the underlying libp2p host, or nil before Start. It is meant
// for diagnostics; Parley code should use the Node's methods.
func (n *Node) Host() host.Host {
	if n.running() != nil {
		return nil
	}
	return n.host
}

// PeerAddrs returns the addresses the peerstore holds for p, or nil when
// the node is not running. Unlike Host().Peerstore(), it is safe to call
// from goroutines that may outlive the node.
func (n *Node) PeerAddrs(p peer.ID) []ma.Multiaddr {
	if n.running() != nil {
		return nil
	}
	return n.host.Peerstore().Addrs(p)
}

// AddPeerAddrs remembers addresses for p for ttl; it does nothing when the
// node is not running.
func (n *Node) AddPeerAddrs(p peer.ID, addrs []ma.Multiaddr, ttl time.Duration) {
	if n.running() != nil || len(addrs) == 0 {
		return
	}
	n.host.Peerstore().AddAddrs(p, addrs, ttl)
}

// ListenAddresses returns the addresses the node listens on (before any
// NAT mapping), or nil when it is not running.
func (n *Node) ListenAddresses() []ma.Multiaddr {
	if n.running() != nil {
		return nil
	}
	return n.host.Network().ListenAddresses()
}

// AddrInfo returns the node's ID and listen addresses, for handing to
// another node's Connect or WithBootstrapPeers.
func (n *Node) AddrInfo() peer.AddrInfo {
	if n.running() != nil {
		return peer.AddrInfo{ID: n.ID()}
	}
	return peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()}
}

// Addrs returns the node's full multiaddrs (with /p2p/<id>).
func (n *Node) Addrs() []ma.Multiaddr {
	ai := n.AddrInfo()
	addrs, err := peer.AddrInfoToP2pAddrs(&ai)
	if err != nil {
		return nil
	}
	return addrs
}

// Connect dials a peer.
func (n *Node) Connect(ctx context.Context, ai peer.AddrInfo) error {
	if err := n.running(); err != nil {
		return err
	}
	if err := n.host.Connect(ctx, ai); err != nil {
		return fmt.Errorf("p2p: connect %s: %w", ai.ID, err)
	}
	return nil
}

// Peers returns the peers the node is connected to.
func (n *Node) Peers() []peer.ID {
	if n.running() != nil {
		return nil
	}
	return n.host.Network().Peers()
}

// Connected reports whether the node has a connection to p.
func (n *Node) Connected(p peer.ID) bool {
	if n.running() != nil {
		return false
	}
	return n.host.Network().Connectedness(p) == network.Connected
}

// PeerScore returns p's gossipsub score as last sampled (see
// WithScoreInspectInterval), and whether p was scored at all.
func (n *Node) PeerScore(p peer.ID) (float64, bool) {
	m := n.scores.Load()
	if m == nil {
		return 0, false
	}
	s, ok := (*m)[p]
	return s, ok
}

// Stats returns a snapshot of the node's counters.
func (n *Node) Stats() Stats {
	return n.stats.snapshot()
}

type mdnsNotifee struct{ n *Node }

// HandlePeerFound dials a peer found on the LAN.
func (m mdnsNotifee) HandlePeerFound(ai peer.AddrInfo) {
	if ai.ID == m.n.ID() {
		return
	}
	m.n.log.Debug("mDNS found peer", "peer", ai.ID)
	m.n.dialAll([]peer.AddrInfo{ai})
}
