package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestFreshKeyPackagesAreRationed: a peer gets one fresh KeyPackage a
// minute, all peers together freshKeyPackageBurst a minute, so that
// nobody can make the node store KeyPackages without bound.
func TestFreshKeyPackagesAreRationed(t *testing.T) {
	var k keyPackageLimiter
	now := time.Unix(1_800_000_000, 0)
	if !k.allow("alice", now) {
		t.Fatal("a first request refused")
	}
	if k.allow("alice", now.Add(30*time.Second)) {
		t.Error("a second fresh KeyPackage within the minute")
	}
	if !k.allow("alice", now.Add(61*time.Second)) {
		t.Error("refused a minute later")
	}
	granted := 0
	at := now.Add(5 * time.Minute)
	for i := range 1000 {
		if k.allow(peer.ID(fmt.Sprintf("p%d", i)), at) {
			granted++
		}
	}
	if granted != freshKeyPackageBurst {
		t.Errorf("1,000 peers at once got %d fresh KeyPackages, want %d", granted, freshKeyPackageBurst)
	}
	if len(k.last) > freshKeyPackageBurst+1 {
		t.Errorf("the limiter remembers %d peers", len(k.last))
	}
}
