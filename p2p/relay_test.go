package p2p

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// behindNAT makes a node take itself for private without asking AutoNAT,
// which cannot tell on loopback (it neither dials nor trusts loopback
// addresses). The namespaces test (cmd/node/chaos TestNATTraversal) lets
// AutoNAT find it out behind real NATs.
func behindNAT() Option {
	return func(n *Node) error {
		n.forceReach = network.ReachabilityPrivate
		return nil
	}
}

// throughRelay is the address of target through relay's circuit. On
// loopback a node does not advertise it (autorelay only builds relayed
// addresses on a relay's public addresses), so tests make it.
func throughRelay(t *testing.T, relay, target *Node) peer.AddrInfo {
	t.Helper()
	a, err := ma.NewMultiaddr(relay.AddrInfo().Addrs[0].String() + "/p2p/" + relay.ID().String() + "/p2p-circuit")
	if err != nil {
		t.Fatal(err)
	}
	return peer.AddrInfo{ID: target.ID(), Addrs: []ma.Multiaddr{a}}
}

// reachedThrough dials target through relay until the relay lets the
// circuit through, which it does once target holds a reservation.
func reachedThrough(t *testing.T, from, relay, target *Node) {
	t.Helper()
	ai := throughRelay(t, relay, target)
	var err error
	eventually(t, waitLong, "a connection through the relay (the target's reservation)", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), waitShort)
		defer cancel()
		err = from.Connect(ctx, ai)
		return err == nil
	})
}

// A node behind a NAT given a relay (--relay) connects to it on its own,
// reserves a slot, and advertises the relayed address; another node
// reaches it through the relay alone, with a connection that carries
// Parley's requests (the relay sets no limits), and PathTo tells relayed
// from direct.
func TestPrivateNodeIsReachedThroughItsStaticRelay(t *testing.T) {
	relay := startNode(t, nil, WithRelayService(true))
	private := startNode(t, nil, behindNAT(), WithStaticRelays(relay.AddrInfo()))
	if err := private.Handle("echo", func(_ context.Context, _ peer.ID, req []byte, w ResponseWriter) error {
		return w.Write(req)
	}); err != nil {
		t.Fatal(err)
	}
	other := startNode(t, nil)
	reachedThrough(t, other, relay, private)
	if got := relay.Reachability().Host; got != "public" {
		t.Errorf("relay's reachability %q, want public", got)
	}
	if got := private.Reachability().Host; got != "private" {
		t.Errorf("private node's reachability %q, want private", got)
	}

	if got, want := other.PathTo(private.ID()), PathRelay; got != want {
		t.Errorf("other.PathTo(private) = %v, want %v", got, want)
	}
	eventually(t, waitShort, "the private node to see the relayed connection", func() bool {
		return private.PathTo(other.ID()) == PathRelay
	})
	if !other.Connected(private.ID()) {
		t.Error("other.Connected(private) = false over an unlimited relayed connection")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	resp, err := other.Request(ctx, private.ID(), "echo", []byte("through the relay"))
	if err != nil || string(resp) != "through the relay" {
		t.Errorf("request through the relay: %q, %v", resp, err)
	}

	if got, want := other.PathTo(relay.ID()), PathDirect; got != want {
		t.Errorf("other.PathTo(relay) = %v, want %v (the circuit's first leg)", got, want)
	}
	if got, want := relay.PathTo(other.ID()), PathDirect; got != want {
		t.Errorf("relay.PathTo(other) = %v, want %v", got, want)
	}

	// A direct connection besides the relayed one (on loopback nothing
	// stands in the way; behind NATs hole punching makes it) makes the
	// path direct.
	other.host.Peerstore().AddAddrs(private.ID(), private.AddrInfo().Addrs, time.Minute)
	if _, err := other.host.Network().DialPeer(network.WithForceDirectDial(ctx, "test"), private.ID()); err != nil {
		t.Fatal(err)
	}
	if got, want := other.PathTo(private.ID()), PathDirect; got != want {
		t.Errorf("after a direct dial, other.PathTo(private) = %v, want %v", got, want)
	}
	if got, want := other.PathTo(key2id(t, newKey(t))), PathNone; got != want {
		t.Errorf("other.PathTo(a stranger) = %v, want %v", got, want)
	}
}

// Without --relay, a node behind a NAT uses a connected peer that offers
// the relay service, and reserves a slot on it at once: libp2p's defaults
// wait for four candidates or three minutes.
func TestPrivateNodeReservesOnAConnectedRelay(t *testing.T) {
	relay := startNode(t, nil, WithRelayService(true))
	private := startNode(t, nil, behindNAT())
	connect(t, private, relay)
	reachedThrough(t, startNode(t, nil), relay, private)
}

func TestPathString(t *testing.T) {
	for _, tc := range []struct {
		p    Path
		want string
	}{{PathNone, ""}, {PathDirect, "direct"}, {PathRelay, "relay"}} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Path(%d).String() = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// A node dials its relays at start, like bootstrap peers: autorelay only
// looks for them once AutoNAT has found the node private, and AutoNAT
// needs a connected peer (the relay, usually) to find that out.
func TestStaticRelaysAreDialledAtStart(t *testing.T) {
	relay := startNode(t, nil, WithRelayService(true))
	n := startNode(t, nil, WithStaticRelays(relay.AddrInfo()))
	eventually(t, waitShort, "a connection to the relay", func() bool { return n.Connected(relay.ID()) })
}

// TestRelayCarriesOnlyCircuitsOfPeersItKnows: a relay told which peers it
// knows (WithRelayFor: for a Parley node its groups' members and its
// contacts) carries a circuit from a peer it knows to a private node,
// and refuses one between two peers it does not know.
func TestRelayCarriesOnlyCircuitsOfPeersItKnows(t *testing.T) {
	friend, stranger := startNode(t, nil), startNode(t, nil)
	relay := startNode(t, nil, WithRelayService(true), WithRelayFor(func(p peer.ID) bool { return p == friend.ID() }))
	private := startNode(t, nil, behindNAT(), WithStaticRelays(relay.AddrInfo()))
	reachedThrough(t, friend, relay, private)
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	err := stranger.Connect(ctx, throughRelay(t, relay, private))
	if err == nil {
		t.Fatal("the relay carried a circuit between two peers it does not know")
	}
	if stranger.Connected(private.ID()) {
		t.Error("the stranger is connected to the private node")
	}
}
