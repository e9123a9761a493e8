package p2p

import (
	"log/slog"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
)

// Path is how the node reaches a peer.
type Path uint8

const (
	// PathNone: the node has no connection to the peer.
	PathNone Path = iota
	// PathDirect: at least one connection goes straight to the peer.
	PathDirect
	// PathRelay: every connection to the peer goes through a circuit
	// relay (a relay v2 node in the middle).
	PathRelay
)

func (p Path) String() string {
	switch p {
	case PathDirect:
		return "direct"
	case PathRelay:
		return "relay"
	}
	return ""
}

// PathTo says how the node is connected to p: directly, only through a
// relay, or not at all. A connection that hole punching (DCUtR) made out
// of a relayed one is direct.
func (n *Node) PathTo(p peer.ID) Path {
	if n.running() != nil {
		return PathNone
	}
	return pathOf(n.host.Network().ConnsToPeer(p))
}

func pathOf(conns []network.Conn) Path {
	path := PathNone
	for _, c := range conns {
		if isRelayed(c.RemoteMultiaddr()) {
			path = PathRelay
			continue
		}
		return PathDirect
	}
	return path
}

func isRelayed(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// Reachability is what AutoNAT found out about the node.
type Reachability struct {
	// Host is AutoNAT v1's verdict on the whole node ("public",
	// "private" or "unknown"); autorelay reserves relay slots while it is
	// not public. A relay service node is public by configuration (see
	// WithRelayService).
	Host string
	// Reachable and Unreachable are the addresses AutoNAT v2 confirmed
	// that others can, or cannot, dial. Private (LAN) addresses are never
	// checked.
	Reachable, Unreachable []ma.Multiaddr
}

// Reachability returns what AutoNAT found so far.
func (n *Node) Reachability() Reachability {
	r := n.reach.Load()
	if r == nil {
		return Reachability{Host: reachabilityName(network.ReachabilityUnknown)}
	}
	return *r
}

func reachabilityName(r network.Reachability) string {
	switch r {
	case network.ReachabilityPublic:
		return "public"
	case network.ReachabilityPrivate:
		return "private"
	}
	return "unknown"
}

// noteReachability records and logs an AutoNAT event (from the node's
// loop, the only writer).
func (n *Node) noteReachability(e any) {
	r := n.Reachability()
	switch ev := e.(type) {
	case event.EvtLocalReachabilityChanged:
		r.Host = reachabilityName(ev.Reachability)
		n.log.Info("AutoNAT: reachability", "reachability", r.Host)
	case event.EvtHostReachableAddrsChanged:
		r.Reachable = slices.Clone(ev.Reachable)
		r.Unreachable = slices.Clone(ev.Unreachable)
		n.log.Info("AutoNAT: addresses checked", "reachable", r.Reachable, "unreachable", r.Unreachable)
	default:
		return
	}
	n.reach.Store(&r)
}

// Relay settings.
const (
	// relayBackoff is how long autorelay leaves a relay alone after it
	// refused a reservation (libp2p's default is an hour, too long for a
	// group whose only relay was restarting).
	relayBackoff = time.Minute
	// relaySourceInterval is how often autorelay asks for relay
	// candidates among the connected peers when it has none.
	relaySourceInterval = 10 * time.Second
)

// autoRelayOptions tune autorelay for Parley, where a node knows one or a
// few relays (members with a public address), not a crowd of public
// ones: libp2p's defaults wait for 4 candidates or 3 minutes before the
// first reservation.
func autoRelayOptions() []autorelay.Option {
	return []autorelay.Option{
		autorelay.WithMinCandidates(1),
		autorelay.WithBootDelay(0),
		autorelay.WithBackoff(relayBackoff),
		autorelay.WithMinInterval(relaySourceInterval),
	}
}

// relayServiceOptions configure the circuit relay v2 service. Circuits
// have no time or data limit: a member behind a symmetric NAT, which hole
// punching cannot reach, talks to the group through the relay for as long
// as it is online, and libp2p does not run gossipsub or Parley's streams
// over limited connections. The number of reservations and circuits stays
// bounded (libp2p's defaults: 128 reservations, 16 circuits per peer).
func (n *Node) relayServiceOptions() []relayv2.Option {
	opts := []relayv2.Option{relayv2.WithInfiniteLimits()}
	if n.relayKnown != nil {
		opts = append(opts, relayv2.WithACL(relayACL{n.relayKnown}))
	}
	return opts
}

// WithRelayFor limits what the relay service carries: a circuit only
// where known says its source or its destination is a peer this node
// knows (for a Parley node: a member of one of its groups, or a
// contact). Reservations stay open to all (libp2p bounds them: 128,
// and one per peer), so that a stranger behind a NAT, given an invite
// code, can be reached by the member it asks. Without it the relay
// carries circuits between any peers, with no time or data limit.
func WithRelayFor(known func(peer.ID) bool) Option {
	return func(n *Node) error {
		n.relayKnown = known
		return nil
	}
}

// relayACL is the relay service's filter of WithRelayFor.
type relayACL struct{ known func(peer.ID) bool }

func (relayACL) AllowReserve(peer.ID, ma.Multiaddr) bool { return true }

func (a relayACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.known(src) || a.known(dest)
}

// holePunchLog logs the outcome of each hole punch (DCUtR): whether a
// relayed connection became a direct one, and if not why. Attempts and
// the direct dials tried before punching are logged at debug level.
type holePunchLog struct{ log *slog.Logger }

func (h holePunchLog) Trace(e *holepunch.Event) {
	switch ev := e.Evt.(type) {
	case *holepunch.StartHolePunchEvt:
		h.log.Debug("hole punch: start", "peer", e.Remote, "addrs", ev.RemoteAddrs, "rtt", ev.RTT)
	case *holepunch.EndHolePunchEvt:
		if ev.Success {
			h.log.Info("hole punch: direct connection", "peer", e.Remote, "took", ev.EllapsedTime)
		} else {
			h.log.Info("hole punch: failed; staying relayed", "peer", e.Remote, "took", ev.EllapsedTime, "err", ev.Error)
		}
	case *holepunch.DirectDialEvt:
		h.log.Debug("hole punch: direct dial", "peer", e.Remote, "ok", ev.Success, "err", ev.Error)
	case *holepunch.ProtocolErrorEvt:
		h.log.Debug("hole punch: protocol error", "peer", e.Remote, "err", ev.Error)
	}
}
