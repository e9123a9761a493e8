package p2p

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
)

// EventType says what an Event is about.
type EventType uint8

const (
	EventPeerConnected EventType = iota + 1
	EventPeerDisconnected
	EventTopicPeerJoined
	EventTopicPeerLeft
)

func (t EventType) String() string {
	switch t {
	case EventPeerConnected:
		return "peer connected"
	case EventPeerDisconnected:
		return "peer disconnected"
	case EventTopicPeerJoined:
		return "topic peer joined"
	case EventTopicPeerLeft:
		return "topic peer left"
	}
	return "unknown event"
}

// Event is a change in the node's connections or topic peers.
type Event struct {
	Type  EventType
	Peer  peer.ID
	Topic string // for topic events
}

type watcher struct{ ch chan Event }

// eventBusBuffer is the buffer of the node's libp2p event bus subscription.
const eventBusBuffer = 256

// Events returns a channel of events and a function that stops them. The
// channel holds buffer events; when it is full, further events are dropped
// and counted in Stats.EventsDropped. The channel closes when stop is
// called or the node closes.
func (n *Node) Events(buffer int) (<-chan Event, func(), error) {
	if err := n.running(); err != nil {
		return nil, nil, err
	}
	w := &watcher{ch: make(chan Event, max(buffer, 1))}
	select {
	case n.watch <- w:
	case <-n.loopDone:
		return nil, nil, ErrClosed
	}
	stop := func() {
		select {
		case n.unwatch <- w:
		case <-n.loopDone:
		}
	}
	return w.ch, stop, nil
}

// Dial and redial settings.
const (
	dialTimeout     = 15 * time.Second
	dialParallelism = 8
	redialBatch     = 16
	bookTimeout     = 5 * time.Second
)

// loop is the node's owner goroutine: it fans events out to watchers,
// remembers identified peers in the PeerBook and redials when the node runs
// short of connections. It owns watchers and known.
func (n *Node) loop(sub event.Subscription, known []peer.AddrInfo) {
	defer close(n.loopDone)
	defer sub.Close()
	watchers := make(map[*watcher]struct{})
	defer func() {
		for w := range watchers {
			close(w.ch)
		}
	}()
	knownByID := make(map[peer.ID]peer.AddrInfo, len(known))
	for _, ai := range known {
		knownByID[ai.ID] = ai
	}
	emit := func(ev Event) {
		for w := range watchers {
			select {
			case w.ch <- ev:
			default:
				n.stats.eventsDropped.Add(1)
			}
		}
	}
	tick := time.NewTicker(n.redialEvery)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case w := <-n.watch:
			watchers[w] = struct{}{}
		case w := <-n.unwatch:
			if _, ok := watchers[w]; ok {
				delete(watchers, w)
				close(w.ch)
			}
		case ev := <-n.topicEvt:
			emit(ev)
		case e, ok := <-sub.Out():
			if !ok {
				return
			}
			switch ev := e.(type) {
			case event.EvtPeerConnectednessChanged:
				switch ev.Connectedness {
				case network.Connected:
					emit(Event{Type: EventPeerConnected, Peer: ev.Peer})
				case network.NotConnected:
					emit(Event{Type: EventPeerDisconnected, Peer: ev.Peer})
				}
			case event.EvtPeerIdentificationCompleted:
				if len(ev.ListenAddrs) > 0 {
					knownByID[ev.Peer] = peer.AddrInfo{ID: ev.Peer, Addrs: ev.ListenAddrs}
					n.rememberPeer(ev.Peer, ev.ListenAddrs)
				}
			case event.EvtLocalReachabilityChanged, event.EvtHostReachableAddrsChanged:
				n.noteReachability(ev)
			}
		case <-tick.C:
			n.redial(knownByID)
		}
	}
}

// rememberPeer writes a peer's addresses to the PeerBook.
func (n *Node) rememberPeer(id peer.ID, addrs []ma.Multiaddr) {
	if n.book == nil {
		return
	}
	rec, err := encodePeerRecord(peerRecord{Addrs: addrs, LastSeen: time.Now()})
	if err != nil {
		n.log.Debug("peer record not encodable", "peer", id, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, bookTimeout)
	defer cancel()
	if err := n.book.PutPeer(ctx, id.String(), rec); err != nil {
		n.log.Warn("peer book write failed", "peer", id, "err", err)
	}
}

// loadKnownPeers reads the PeerBook, skipping records it cannot parse.
func (n *Node) loadKnownPeers(ctx context.Context) []peer.AddrInfo {
	if n.book == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, bookTimeout)
	defer cancel()
	recs, err := n.book.Peers(ctx)
	if err != nil {
		n.log.Warn("peer book read failed", "err", err)
		return nil
	}
	self := n.ID()
	var out []peer.AddrInfo
	for s, raw := range recs {
		id, err := peer.Decode(s)
		if err != nil || id == self {
			continue
		}
		rec, err := decodePeerRecord(raw)
		if err != nil {
			n.log.Debug("peer record skipped", "peer", id, "err", err)
			continue
		}
		out = append(out, peer.AddrInfo{ID: id, Addrs: rec.Addrs})
	}
	return out
}

// redial dials bootstrap and known peers when the node has fewer
// connections than it wants.
func (n *Node) redial(known map[peer.ID]peer.AddrInfo) {
	if len(n.host.Network().Peers()) >= max(n.connLow/4, 1) {
		return
	}
	cands := n.bootstrapPeers()
	for _, ai := range known {
		cands = append(cands, ai)
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	n.dialAll(cands[:min(len(cands), redialBatch)])
}

// bootstrapPeers are the peers dialled at start and redialled when the
// node runs short of connections: the bootstrap peers and the static
// relays. A relay is dialled like a bootstrap peer because autorelay only
// looks for it once AutoNAT has found the node private, and AutoNAT needs
// a connected peer (the relay, usually) to find that out.
func (n *Node) bootstrapPeers() []peer.AddrInfo {
	return append(append([]peer.AddrInfo(nil), n.bootstrap...), n.staticRelays...)
}

// dialAll dials the peers not yet connected, a few at a time, in the
// background.
func (n *Node) dialAll(peers []peer.AddrInfo) {
	self := n.host.ID()
	var todo []peer.AddrInfo
	for _, ai := range peers {
		if ai.ID == self || ai.ID == "" || n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		todo = append(todo, ai)
	}
	if len(todo) == 0 {
		return
	}
	n.goTracked(func() {
		var wg sync.WaitGroup
		defer wg.Wait()
		sem := make(chan struct{}, dialParallelism)
		for _, ai := range todo {
			select {
			case sem <- struct{}{}:
			case <-n.ctx.Done():
				return
			}
			wg.Go(func() {
				defer func() { <-sem }()
				n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.RecentlyConnectedAddrTTL)
				ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
				defer cancel()
				if err := n.host.Connect(ctx, ai); err != nil {
					n.log.Debug("dial failed", "peer", ai.ID, "err", err)
				}
			})
		}
	})
}
