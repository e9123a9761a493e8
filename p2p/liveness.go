package p2p

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	msmux "github.com/multiformats/go-multistream"
)

// A peer that dies without closing its connections (kill -9, a machine
// switched off, a cable pulled) stays connected until the transport
// notices: a QUIC connection only at its 30 s idle timeout. Meanwhile
// members show online, gossipsub keeps the peer in its mesh, and
// requests to it wait out their timeouts. So the node pings each
// connected peer every livenessEvery, and closes the connections of a
// peer that answered none of livenessMisses pings in a row: Connected
// turns false within about livenessEvery × (livenessMisses + 1).

// livenessMisses is how many pings in a row a peer may miss.
const livenessMisses = 2

// WithLiveness sets how often connected peers are pinged (0: never; the
// transports' own timeouts then decide). Default 5 s: a dead peer is
// offline within 10-15 s, and a live one must leave two pings in a row
// unanswered for 5 s each (a stall that breaks more than pings) to be
// taken for dead.
func WithLiveness(every time.Duration) Option {
	return func(n *Node) error {
		n.livenessEvery = every
		return nil
	}
}

// liveness pings every connected peer each livenessEvery until the node
// closes. A ping waits at most livenessEvery; the pings of a round run
// at once, one goroutine a peer, and a round ends before the next starts.
func (n *Node) liveness() {
	if n.livenessEvery <= 0 {
		return
	}
	tick := time.NewTicker(n.livenessEvery)
	defer tick.Stop()
	missed := map[peer.ID]int{}
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		peers := n.host.Network().Peers()
		answered := make([]bool, len(peers))
		var wg sync.WaitGroup
		for i, p := range peers {
			wg.Go(func() { answered[i] = n.ping(p) })
		}
		wg.Wait()
		next := make(map[peer.ID]int, len(peers))
		for i, p := range peers {
			if answered[i] {
				continue
			}
			next[p] = missed[p] + 1
			if next[p] >= livenessMisses {
				n.log.Info("peer stopped answering pings; closing its connections", "peer", p.String(), "missed", next[p])
				n.host.Network().ClosePeer(p)
				delete(next, p)
			}
		}
		missed = next
	}
}

// ping reports whether p answered one ping within livenessEvery. A peer
// that does not speak the ping protocol counts as answering: only
// silence on an open connection is a miss.
func (n *Node) ping(p peer.ID) bool {
	ctx, cancel := context.WithTimeout(n.ctx, n.livenessEvery)
	defer cancel()
	var unsupported msmux.ErrNotSupported[protocol.ID]
	select {
	case r := <-ping.Ping(ctx, n.host, p):
		return r.Error == nil || errors.As(r.Error, &unsupported) || n.ctx.Err() != nil
	case <-ctx.Done():
		return n.ctx.Err() != nil
	}
}
