package p2p

import (
	"fmt"
	"log/slog"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Option configures a Node. Options are applied by New, in order.
type Option func(*Node) error

// DHTMode selects how a node takes part in the Kademlia DHT.
type DHTMode uint8

const (
	// DHTAuto serves DHT queries only once AutoNAT finds the node publicly
	// reachable (the default).
	DHTAuto DHTMode = iota
	// DHTClient queries the DHT but never serves it.
	DHTClient
	// DHTServer always serves the DHT. Use it for always-on nodes and tests.
	DHTServer
	// DHTOff disables the DHT and with it internet rendezvous.
	DHTOff
)

// QueueSizes sizes the gossipsub queues. Overflow of any of them drops a
// message; every drop is counted in Stats.
type QueueSizes struct {
	// Outbound is the per-peer outbound RPC queue (pubsub default 32).
	Outbound int
	// Validation is the queue in front of the validators (pubsub default 32).
	Validation int
	// Subscription is the buffer of each topic subscription (pubsub default 32).
	Subscription int
}

// DefaultQueueSizes are sized for a burst of a few hundred messages, such as
// a catch-up of many commits and application messages at once.
var DefaultQueueSizes = QueueSizes{Outbound: 512, Validation: 1024, Subscription: 1024}

// StreamLimits bounds the request/response protocols.
type StreamLimits struct {
	// MaxFrame is the largest frame accepted or sent, in bytes.
	MaxFrame int
	// MaxStream is the most bytes read from one response stream.
	MaxStream int64
	// PerPeer is how many requests from one peer are served at once; further
	// requests are answered with ErrPeerBusy.
	PerPeer int
	// Timeout bounds a whole request (on the requester) and a whole handler
	// run (on the responder) when the context has no earlier deadline.
	Timeout time.Duration
}

// DefaultStreamLimits allow a Welcome of a 10,000-member group (about
// 2.8 MiB) in one frame.
var DefaultStreamLimits = StreamLimits{
	MaxFrame:  8 << 20,
	MaxStream: 64 << 20,
	PerPeer:   4,
	Timeout:   30 * time.Second,
}

// DefaultGossipSizeLimit is the largest payload published over gossip.
// Larger payloads travel over direct streams (Node.Request).
const DefaultGossipSizeLimit = 1 << 20

// WithLogger sets the logger; the default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(n *Node) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrBadOption)
		}
		n.log = l
		return nil
	}
}

// WithListenAddrs sets the listen multiaddrs. The default listens on all
// IPv4 and IPv6 interfaces over TCP and QUIC on ephemeral ports.
func WithListenAddrs(addrs ...string) Option {
	return func(n *Node) error {
		n.listen = append([]string(nil), addrs...)
		return nil
	}
}

// WithMDNS turns LAN discovery by mDNS on or off (on by default).
func WithMDNS(on bool) Option {
	return func(n *Node) error {
		n.mdnsOn = on
		return nil
	}
}

// WithMDNSServiceName sets the mDNS service name; nodes only find nodes that
// use the same name.
func WithMDNSServiceName(name string) Option {
	return func(n *Node) error {
		if name == "" {
			return fmt.Errorf("%w: empty mDNS service name", ErrBadOption)
		}
		n.mdnsName = name
		return nil
	}
}

// WithBootstrapPeers sets peers dialled at start and used to bootstrap the
// DHT. There are none by default: Parley never contacts public bootstrap
// nodes on its own.
func WithBootstrapPeers(peers ...peer.AddrInfo) Option {
	return func(n *Node) error {
		n.bootstrap = append([]peer.AddrInfo(nil), peers...)
		return nil
	}
}

// WithDHT sets the DHT mode.
func WithDHT(mode DHTMode) Option {
	return func(n *Node) error {
		if mode > DHTOff {
			return fmt.Errorf("%w: DHT mode %d", ErrBadOption, mode)
		}
		n.dhtMode = mode
		return nil
	}
}

// WithPeerBook sets where known peers are remembered; they are redialled
// at start and when the node runs short of connections.
func WithPeerBook(pb PeerBook) Option {
	return func(n *Node) error {
		n.book = pb
		return nil
	}
}

// WithRelayService makes the node a circuit relay v2 for others and an
// AutoNAT v1 server (off by default). Enable it on always-on nodes with a
// public address: the node then takes itself for publicly reachable
// (libp2p relays only from public nodes), and relays circuits without
// time or data limits, so that members that hole punching cannot join
// directly keep talking through it.
func WithRelayService(on bool) Option {
	return func(n *Node) error {
		n.relayService = on
		return nil
	}
}

// WithStaticRelays sets the relays used when the node is behind a NAT. By
// default relays are picked among connected peers that offer the service.
// Either way the node reserves a slot on a relay once AutoNAT finds it
// private, advertises the relayed address, and peers that reach it
// through the relay try to upgrade to a direct connection by hole
// punching (DCUtR).
func WithStaticRelays(relays ...peer.AddrInfo) Option {
	return func(n *Node) error {
		n.staticRelays = append([]peer.AddrInfo(nil), relays...)
		return nil
	}
}

// WithNATPortMap turns on UPnP/NAT-PMP port mapping (off by default).
func WithNATPortMap(on bool) Option {
	return func(n *Node) error {
		n.natPortMap = on
		return nil
	}
}

// WithConnLimits sets the connection manager watermarks: above high it
// trims connections down to low (defaults 32 and 64).
func WithConnLimits(low, high int) Option {
	return func(n *Node) error {
		if low < 1 || high < low {
			return fmt.Errorf("%w: connection limits %d/%d", ErrBadOption, low, high)
		}
		n.connLow, n.connHigh = low, high
		return nil
	}
}

// WithResourceLimits sizes the resource manager for the given memory and
// file descriptors (defaults 256 MiB and 512, a phone-class device).
func WithResourceLimits(memory int64, fds int) Option {
	return func(n *Node) error {
		if memory < 64<<20 || fds < 64 {
			return fmt.Errorf("%w: resource limits %d bytes, %d fds", ErrBadOption, memory, fds)
		}
		n.rcMemory, n.rcFDs = memory, fds
		return nil
	}
}

// WithGossipSizeLimit sets the largest payload accepted or published on a
// topic (default DefaultGossipSizeLimit).
func WithGossipSizeLimit(size int) Option {
	return func(n *Node) error {
		if size < 1 {
			return fmt.Errorf("%w: gossip size limit %d", ErrBadOption, size)
		}
		n.gossipLimit = size
		return nil
	}
}

// WithQueueSizes sets the gossipsub queue sizes (default DefaultQueueSizes).
func WithQueueSizes(q QueueSizes) Option {
	return func(n *Node) error {
		if q.Outbound < 1 || q.Validation < 1 || q.Subscription < 1 {
			return fmt.Errorf("%w: queue sizes %+v", ErrBadOption, q)
		}
		n.queues = q
		return nil
	}
}

// WithGossipParams replaces the tuned gossipsub parameters (see
// GossipParams).
func WithGossipParams(p pubsub.GossipSubParams) Option {
	return func(n *Node) error {
		n.gossipParams = p
		return nil
	}
}

// WithScoreInspectInterval sets how often peer scores are sampled for
// Node.PeerScore (default 1s).
func WithScoreInspectInterval(d time.Duration) Option {
	return func(n *Node) error {
		if d <= 0 {
			return fmt.Errorf("%w: score interval %v", ErrBadOption, d)
		}
		n.scoreEvery = d
		return nil
	}
}

// WithValidatorTimeout bounds one run of a topic validator (default 5s);
// a validator that runs out of time ignores the message.
func WithValidatorTimeout(d time.Duration) Option {
	return func(n *Node) error {
		if d <= 0 {
			return fmt.Errorf("%w: validator timeout %v", ErrBadOption, d)
		}
		n.validatorTimeout = d
		return nil
	}
}

// WithStreamLimits sets the request/response limits (default
// DefaultStreamLimits).
func WithStreamLimits(l StreamLimits) Option {
	return func(n *Node) error {
		if l.MaxFrame < 1 || l.MaxStream < int64(l.MaxFrame) || l.PerPeer < 1 || l.Timeout <= 0 {
			return fmt.Errorf("%w: stream limits %+v", ErrBadOption, l)
		}
		n.streams = l
		return nil
	}
}

// WithRedialInterval sets how often the node checks that it has enough
// connections and redials known and bootstrap peers if not (default 1m).
func WithRedialInterval(d time.Duration) Option {
	return func(n *Node) error {
		if d <= 0 {
			return fmt.Errorf("%w: redial interval %v", ErrBadOption, d)
		}
		n.redialEvery = d
		return nil
	}
}

// WithRendezvousInterval sets how often a group rendezvous re-advertises
// and looks for members in the DHT (default 1m).
func WithRendezvousInterval(d time.Duration) Option {
	return func(n *Node) error {
		if d <= 0 {
			return fmt.Errorf("%w: rendezvous interval %v", ErrBadOption, d)
		}
		n.rendezvousEvery = d
		return nil
	}
}
