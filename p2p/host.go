package p2p

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/proto"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
)

// dhtProtocolPrefix keeps Parley's DHT apart from the public IPFS one: only
// Parley nodes serve it, reached through the caller's bootstrap peers.
const dhtProtocolPrefix = "/parley"

// userAgent is announced by identify.
const userAgent = "parley"

// newHost builds the libp2p host: TCP and QUIC, Noise and TLS, resource and
// connection managers, AutoNAT v2, relay client, hole punching, and the DHT
// as peer routing when enabled.
func (n *Node) newHost() (host.Host, error) {
	limits := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&limits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Scale(n.rcMemory, n.rcFDs)), n.rcmgrMetrics()...)
	if err != nil {
		return nil, fmt.Errorf("p2p: resource manager: %w", err)
	}
	cm, err := connmgr.NewConnManager(n.connLow, n.connHigh)
	if err != nil {
		return nil, fmt.Errorf("p2p: connection manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(rememberSignatures(n.key)),
		libp2p.ListenAddrStrings(n.listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.ResourceManager(rm),
		libp2p.ConnectionManager(cm),
		libp2p.EnableRelay(),
		libp2p.EnableHolePunching(n.holePunchTracer()),
		libp2p.EnableAutoNATv2(),
		n.hostMetrics(),
		libp2p.UserAgent(userAgent),
	}
	// The relay peer source needs the host, which exists only once
	// libp2p.New returns; autorelay asks for candidates later than that.
	var self atomic.Pointer[host.Host]
	if len(n.staticRelays) > 0 {
		opts = append(opts, libp2p.EnableAutoRelayWithStaticRelays(n.staticRelays, autoRelayOptions()...))
	} else {
		opts = append(opts, libp2p.EnableAutoRelayWithPeerSource(func(ctx context.Context, num int) <-chan peer.AddrInfo {
			h := self.Load()
			if h == nil {
				c := make(chan peer.AddrInfo)
				close(c)
				return c
			}
			return relayCandidates(ctx, *h, num)
		}, autoRelayOptions()...))
	}
	switch {
	case n.relayService:
		// libp2p runs the relay service only while AutoNAT v1 says the
		// node is public, and only a public peer running the AutoNAT v1
		// service can say so: among Parley nodes, where the relay is
		// usually the only public one, it never would. A node told to
		// relay has a public address by its operator's word; AutoNAT v2
		// still checks its addresses (Reachability). It also answers
		// AutoNAT v1 for others, which is how members behind NATs learn
		// that they are private and start reserving relay slots.
		opts = append(opts,
			libp2p.EnableRelayService(n.relayServiceOptions()...),
			libp2p.EnableNATService(),
			libp2p.ForceReachabilityPublic())
	case n.forceReach == network.ReachabilityPrivate:
		opts = append(opts, libp2p.ForceReachabilityPrivate())
	}
	if n.natPortMap {
		opts = append(opts, libp2p.NATPortMap())
	}
	if n.dhtMode != DHTOff {
		opts = append(opts, libp2p.Routing(func(h host.Host) (routing.PeerRouting, error) {
			kad, err := dht.New(h,
				dht.Mode(kadMode(n.dhtMode)),
				dht.ProtocolPrefix(dhtProtocolPrefix),
				dht.BootstrapPeers(n.bootstrap...),
			)
			if err != nil {
				return nil, err
			}
			n.kad = kad
			return kad, nil
		}))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: host: %w", err)
	}
	self.Store(&h)
	return h, nil
}

func kadMode(m DHTMode) dht.ModeOpt {
	switch m {
	case DHTClient:
		return dht.ModeClient
	case DHTServer:
		return dht.ModeServer
	}
	return dht.ModeAuto
}

// relayCandidates offers connected peers that run a circuit relay v2
// service.
func relayCandidates(ctx context.Context, h host.Host, num int) <-chan peer.AddrInfo {
	out := make(chan peer.AddrInfo, num)
	defer close(out)
	for _, p := range h.Network().Peers() {
		if len(out) == num || ctx.Err() != nil {
			break
		}
		ok, err := h.Peerstore().SupportsProtocols(p, proto.ProtoIDv2Hop)
		if err != nil || len(ok) == 0 {
			continue
		}
		out <- peer.AddrInfo{ID: p, Addrs: h.Peerstore().Addrs(p)}
	}
	return out
}
