package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/ordering"
	"github.com/parley-p2p/parley/p2p"
)

// Direct-stream protocols (p2p request/response names).
const (
	protoSync        = "parley-sync/1"         // group id || ordering sync request
	protoWelcome     = "parley-welcome/1"      // a Welcome pushed to a joiner
	protoWelcomes    = "parley-welcomes/1"     // a joiner asks for Welcomes kept for it
	protoKeyPackage  = "parley-keypackage/1"   // a fresh KeyPackage of this node
	protoJoin        = "parley-join/1"         // invite token || KeyPackage
	protoAddrs       = "parley-addrs/1"        // addresses of a group's members
	protoWelcomeKeep = "parley-welcome-keep/1" // a member shares a Welcome to hand to a joiner
)

var randRead = rand.Read

// counters are the node's figures for status and metrics.
type counters struct {
	messagesIn, messagesOut, rejected, forks, rollbacks, syncRequests atomic.Int64
	// stateWrites and stateOutputs count the groups' durable writes and
	// the loop outputs they carried, over every group this node ran
	// (a forgotten group's stay counted: the counters never go down).
	stateWrites, stateOutputs atomic.Int64
}

func (c *counters) add(v *atomic.Int64, d int64) { v.Add(d) }

const keyListen = "listen_addrs"

// startNetwork starts the host. Without configured listen addresses the
// node listens where its last run did (the addresses and ports it had,
// whether given with --listen or chosen), so that peers that know its
// addresses find it again after a restart; if those ports are taken, on
// the same addresses with fresh ports.
func (n *Node) startNetwork(ctx context.Context) error {
	listen := n.cfg.Listen
	remembered := false
	if len(listen) == 0 {
		if raw, err := n.st.Setting(ctx, scopeNode, keyListen); err == nil && len(raw) > 0 {
			listen, remembered = strings.Split(string(raw), "\n"), true
		} else {
			listen = p2p.DefaultListenAddrs()
		}
	}
	err := n.startHost(ctx, listen)
	if err != nil && remembered {
		n.log.Info("the ports of the last run are taken; listening on new ones", "err", err)
		err = n.startHost(ctx, freshPorts(listen))
	}
	if err != nil {
		return err
	}
	var addrs []string
	for _, a := range n.p2p.ListenAddresses() {
		// The relay transport's /p2p-circuit comes with the host.
		if s := a.String(); !strings.Contains(s, "/p2p-circuit") {
			addrs = append(addrs, s)
		}
	}
	b := n.st.NewBatch()
	b.PutSetting(scopeNode, keyListen, []byte(strings.Join(addrs, "\n")))
	if err := n.st.Write(ctx, b); err != nil {
		n.log.Warn("remembering the listen addresses", "err", err)
	}
	return nil
}

// freshPorts is addrs with every TCP and UDP port 0: the same addresses,
// ports the system picks.
func freshPorts(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		parts := strings.Split(a, "/")
		for j := 1; j+1 < len(parts); j++ {
			if parts[j] == "tcp" || parts[j] == "udp" {
				parts[j+1] = "0"
			}
		}
		out[i] = strings.Join(parts, "/")
	}
	return out
}

func (n *Node) startHost(ctx context.Context, listen []string) error {
	opts := []p2p.Option{
		p2p.WithLogger(n.cfg.Logger.With("component", "p2p")),
		p2p.WithMDNS(n.cfg.MDNS),
		p2p.WithPeerBook(n.st),
		p2p.WithListenAddrs(listen...),
		// libp2p's metrics and gossipsub's into the node's registry,
		// served by MetricsHandler (docs/METRICS.md).
		p2p.WithMetrics(n.registry()),
	}
	if n.cfg.DHT {
		opts = append(opts, p2p.WithDHT(p2p.DHTAuto))
	} else {
		opts = append(opts, p2p.WithDHT(p2p.DHTOff))
	}
	if len(n.cfg.Bootstrap) > 0 {
		opts = append(opts, p2p.WithBootstrapPeers(n.cfg.Bootstrap...))
	}
	if n.cfg.PubSubDebug {
		opts = append(opts, p2p.WithPubSubDebug(true))
	}
	if n.cfg.RelayService {
		// Circuits only for the members of this node's groups and its
		// contacts (to or from them): not a relay for the world.
		opts = append(opts, p2p.WithRelayService(true), p2p.WithRelayFor(n.knownPeer))
	}
	if len(n.cfg.Relays) > 0 {
		opts = append(opts, p2p.WithStaticRelays(n.cfg.Relays...))
	}
	// Transport signatures, verified on every gossip message, go through
	// tables of the keys that sign often, apart from MLS's: anyone on a
	// topic can sign with new keys, which then never evict members' MLS
	// tables.
	p2p.UseEd25519Verifier(transportVerifier)
	node, err := p2p.New(n.id.Key, opts...)
	if err != nil {
		return err
	}
	handlers := map[string]p2p.Handler{
		protoSync:        n.serveSync,
		protoWelcome:     n.serveWelcome,
		protoWelcomes:    n.serveWelcomes,
		protoKeyPackage:  n.serveKeyPackage,
		protoJoin:        n.serveJoin,
		protoAddrs:       n.serveAddrs,
		protoWelcomeKeep: n.serveWelcomeKeep,
		protoFile:        n.serveFile,
	}
	for name, h := range handlers {
		if err := node.Handle(name, h); err != nil {
			return err
		}
	}
	if err := node.Start(ctx); err != nil {
		node.Close()
		return err
	}
	n.p2p = node
	return nil
}

// runner returns the group with the hex id.
func (n *Node) runner(hexID string) *groupRunner {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.groups[hexID]
}

// serveSync answers a member's catch-up request through the group's loop.
func (n *Node) serveSync(ctx context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	if len(req) < 32 {
		return errors.New("sync request too short")
	}
	g := n.runner(hex.EncodeToString(req[:32]))
	if g == nil || g.loop == nil {
		// The refusal a group's loop gives a non-member: whether this
		// node is in a group is the group's business.
		return w.Write(ordering.RefusedResponse())
	}
	body := req[32:]
	n.mu.Lock()
	n.nextSync++
	id := n.nextSync
	ch := make(chan []byte, 1)
	n.pendingSync[id] = ch
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.pendingSync, id)
		n.mu.Unlock()
	}()
	err := g.do(ctx, func() error {
		g.handle(ordering.SyncRequest{From: g.identityOf(from), ID: id, Body: body})
		return nil
	})
	if err != nil {
		return err
	}
	select {
	case resp := <-ch:
		return w.Write(resp)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answerSync hands the loop's answer to the waiting handler.
func (n *Node) answerSync(id uint64, body []byte) {
	n.mu.Lock()
	ch := n.pendingSync[id]
	n.mu.Unlock()
	if ch != nil {
		ch <- body
	}
}

// connectLoop keeps the node connected to the members of its groups and
// to its contacts: it dials those it knows addresses of and asks
// connected members for the addresses of the others.
func (n *Node) connectLoop() {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		n.connectMembers()
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) connectMembers() {
	want := n.knownPeers()
	// Dial the peers not connected, a few at a time: one that is
	// offline costs up to the dial's timeout, and must not hold up the
	// others.
	var (
		mu      sync.Mutex
		missing []peer.ID
		wg      sync.WaitGroup
		slots   = make(chan struct{}, 8)
	)
	for p := range want {
		if n.p2p.Connected(p) {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			// Redial, not Connect: this loop paces the dials itself, and
			// a member cut off for a while must be reached as soon as it
			// is back, not when the swarm's backoff (up to minutes)
			// expires.
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			defer cancel()
			if err := n.p2p.Redial(ctx, peer.AddrInfo{ID: p, Addrs: n.p2p.PeerAddrs(p)}); err != nil {
				mu.Lock()
				missing = append(missing, p)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(missing) == 0 {
		return
	}
	// Ask a connected member of each group for its members' addresses.
	asked := map[string]bool{}
	for _, p := range missing {
		for _, hexID := range want[p] {
			if asked[hexID] {
				continue
			}
			asked[hexID] = true
			n.askAddrs(hexID, want)
		}
	}
}

// askAddrs asks connected members of a group for the addresses of the
// group's members and dials those.
func (n *Node) askAddrs(hexID string, want map[peer.ID][]string) {
	gid, _ := hex.DecodeString(hexID)
	for p := range want {
		if !n.p2p.Connected(p) {
			continue
		}
		member := false
		for _, h := range want[p] {
			member = member || h == hexID
		}
		if !member {
			continue
		}
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		resp, err := n.p2p.Request(ctx, p, protoAddrs, gid)
		cancel()
		if err != nil {
			continue
		}
		infos, err := decodeAddrInfos(resp)
		if err != nil {
			n.log.Debug("bad address list", "from", p.ShortString(), "err", err)
			continue
		}
		for _, ai := range infos {
			if ai.ID == n.id.PeerID || n.p2p.Connected(ai.ID) {
				continue
			}
			ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
			_ = n.p2p.Connect(ctx, ai)
			cancel()
		}
		return
	}
}

// serveAddrs tells a member of a group the addresses this node knows of
// the group's other members.
func (n *Node) serveAddrs(_ context.Context, from peer.ID, req []byte, w p2p.ResponseWriter) error {
	g := n.runner(hex.EncodeToString(req))
	if g == nil {
		return errNotMember // the same answer: it does not tell whether this node is in the group
	}
	g.mu.Lock()
	_, member := g.members[from]
	var peers []peer.ID
	for p := range g.members {
		if p != from {
			peers = append(peers, p)
		}
	}
	g.mu.Unlock()
	if !member {
		return errNotMember
	}
	var infos []peer.AddrInfo
	for _, p := range peers {
		addrs := n.p2p.PeerAddrs(p)
		if p == n.id.PeerID {
			addrs = n.p2p.AddrInfo().Addrs
		}
		if len(addrs) > 0 {
			infos = append(infos, peer.AddrInfo{ID: p, Addrs: addrs})
		}
	}
	return w.Write(encodeAddrInfos(infos))
}

// errNotMember answers a request about a group from a peer that is not a
// member of it, whether or not this node is.
var errNotMember = errors.New("not a member")

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// watchPeers nudges a group's loop to publish its head when a peer comes
// to the group's topic (a member back from a restart learns at once where
// the group is), and refreshes the groups' online counts.
func (n *Node) watchPeers() error {
	evs, stop, err := n.p2p.Events(256)
	if err != nil {
		return err
	}
	n.goBackground(func() {
		defer stop()
		for {
			select {
			case <-n.ctx.Done():
				return
			case ev, ok := <-evs:
				if !ok {
					return
				}
				n.mu.Lock()
				var runners []*groupRunner
				for _, g := range n.groups {
					if ev.Type != p2p.EventTopicPeerJoined || g.topicName == ev.Topic {
						runners = append(runners, g)
					}
				}
				n.mu.Unlock()
				for _, g := range runners {
					if g.loop == nil {
						continue
					}
					select {
					case g.in <- func() {
						if ev.Type == p2p.EventTopicPeerJoined {
							g.handle(ordering.PeerJoined{})
						}
						g.refresh()
					}:
					default: // the group is busy; the next tick will do
					}
				}
			}
		}
	})
	return nil
}

// knownPeers are the members of this node's groups (with the hex ids of
// the groups they are in) and its contacts (with none), itself left out.
func (n *Node) knownPeers() map[peer.ID][]string {
	known := map[peer.ID][]string{}
	n.mu.Lock()
	for hexID, g := range n.groups {
		g.mu.Lock()
		for p := range g.members {
			if p != n.id.PeerID {
				known[p] = append(known[p], hexID)
			}
		}
		g.mu.Unlock()
	}
	n.mu.Unlock()
	for _, c := range n.contactList() {
		if _, ok := known[c.peerID]; !ok {
			known[c.peerID] = nil
		}
	}
	return known
}

// knownPeer reports whether p is a member of one of this node's groups or
// one of its contacts.
func (n *Node) knownPeer(p peer.ID) bool {
	_, ok := n.knownPeers()[p]
	return ok
}

// transportVerifier verifies the process's transport signatures
// (p2p.UseEd25519Verifier), with tables of its own.
var transportVerifier = suite.NewRepeatedVerifier()
