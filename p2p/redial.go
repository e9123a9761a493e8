package p2p

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
)

// Redial connects to a peer as Connect does, first forgetting the
// swarm's backoff from earlier failed dials to it. The swarm backs off
// a peer it failed to dial for up to 5 minutes (5 s plus a second per
// failure squared); a caller that paces its own redials (the node dials
// members every few seconds) must get through as soon as a partition
// heals or the peer restarts, not when the backoff expires.
func (n *Node) Redial(ctx context.Context, ai peer.AddrInfo) error {
	if err := n.running(); err != nil {
		return err
	}
	if sw, ok := n.host.Network().(*swarm.Swarm); ok {
		sw.Backoff().Clear(ai.ID)
	}
	return n.Connect(ctx, ai)
}
