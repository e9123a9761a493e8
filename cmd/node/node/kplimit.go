package node

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Fresh KeyPackages cost the node a record of their private keys until
// they are used or expire, and anyone who can reach it may ask for one
// (a person adding this node to a group need not be its contact yet). So
// each peer gets at most one fresh KeyPackage per freshKeyPackageEvery,
// and all peers together at most freshKeyPackageBurst within it; past
// that, a peer gets the last-resort KeyPackage, which is stored once and
// serves any number of invitations.
const (
	freshKeyPackageEvery = time.Minute
	freshKeyPackageBurst = 32
)

// keyPackageLimiter decides who gets a fresh KeyPackage.
type keyPackageLimiter struct {
	mu     sync.Mutex
	last   map[peer.ID]time.Time
	window time.Time
	count  int
}

// allow reports whether p may have a fresh KeyPackage at now, and counts
// it if so.
func (k *keyPackageLimiter) allow(p peer.ID, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.last == nil {
		k.last = map[peer.ID]time.Time{}
	}
	if now.Sub(k.window) >= freshKeyPackageEvery {
		k.window, k.count = now, 0
		for q, t := range k.last {
			if now.Sub(t) >= freshKeyPackageEvery {
				delete(k.last, q)
			}
		}
	}
	if t, ok := k.last[p]; ok && now.Sub(t) < freshKeyPackageEvery || k.count >= freshKeyPackageBurst {
		return false
	}
	k.last[p] = now
	k.count++
	return true
}
