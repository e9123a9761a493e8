package p2p

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	drouting "github.com/libp2p/go-libp2p/p2p/discovery/routing"
)

const rendezvousLabel = "parley p2p rendezvous v1"

// RendezvousNamespace derives the DHT namespace of a group from a group
// secret (bytes only members know, such as an exporter secret). The secret
// is hashed under a domain-separation label, so the namespace reveals
// nothing of it and cannot collide with another use of the same secret.
func RendezvousNamespace(groupSecret []byte) string {
	h := sha256.New()
	h.Write([]byte(rendezvousLabel))
	h.Write([]byte{0})
	h.Write(groupSecret)
	return "parley/rdv/" + hex.EncodeToString(h.Sum(nil))
}

// Rendezvous bounds.
const (
	minRendezvousSecret = 16
	rendezvousRetryMin  = time.Second
	rendezvousPeerLimit = 64
)

// Rendezvous advertises this node in the DHT under the group's namespace
// and dials the other members it finds there, every rendezvous interval,
// until stop is called, ctx ends or the node closes. It is how members of a
// group find each other on the internet.
func (n *Node) Rendezvous(ctx context.Context, groupSecret []byte) (stop func(), err error) {
	if err := n.running(); err != nil {
		return nil, err
	}
	if n.kad == nil {
		return nil, ErrNoDHT
	}
	if len(groupSecret) < minRendezvousSecret {
		return nil, fmt.Errorf("%w: group secret of %d bytes", ErrBadOption, len(groupSecret))
	}
	ns := RendezvousNamespace(groupSecret)
	ctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(n.ctx, cancel)
	if !n.goTracked(func() {
		defer stopOnClose()
		n.rendezvous(ctx, ns)
	}) {
		stopOnClose()
		cancel()
		return nil, ErrClosed
	}
	return cancel, nil
}

// rendezvous runs one group's advertise-and-find rounds. A round that finds
// nothing is retried sooner, backing off from a second to the interval.
func (n *Node) rendezvous(ctx context.Context, ns string) {
	disc := drouting.NewRoutingDiscovery(n.kad)
	log := n.log.With("rendezvous", ns[len(ns)-8:])
	wait := rendezvousRetryMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		found, err := n.rendezvousRound(ctx, disc, ns)
		if err != nil {
			log.Debug("rendezvous round failed", "err", err)
		}
		if err != nil || found == 0 {
			wait = min(wait*2, n.rendezvousEvery)
		} else {
			wait = n.rendezvousEvery
		}
		timer.Reset(wait)
	}
}

func (n *Node) rendezvousRound(ctx context.Context, disc *drouting.RoutingDiscovery, ns string) (int, error) {
	rctx, cancel := context.WithTimeout(ctx, max(n.rendezvousEvery, 10*time.Second))
	defer cancel()
	if _, err := disc.Advertise(rctx, ns); err != nil {
		return 0, fmt.Errorf("p2p: advertise: %w", err)
	}
	ch, err := disc.FindPeers(rctx, ns)
	if err != nil {
		return 0, fmt.Errorf("p2p: find peers: %w", err)
	}
	self := n.host.ID()
	var found []peer.AddrInfo
	for ai := range ch {
		if ai.ID != self && len(found) < rendezvousPeerLimit {
			found = append(found, ai)
		}
	}
	n.dialAll(found)
	return len(found), nil
}
