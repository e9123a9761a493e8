package p2p

import (
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// The peerstore accessors answer nil once the node is closed, where
// Host() would have left the caller a nil host to dereference: a
// goroutine that outlives the node (a Welcome pushed to a joiner) must not
// crash the process.
func TestPeerstoreAccessorsAreSafeAfterClose(t *testing.T) {
	a := startNode(t, nil)
	b := startNode(t, nil)
	addr := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	a.AddPeerAddrs(b.ID(), []ma.Multiaddr{addr}, time.Minute)
	if got := a.PeerAddrs(b.ID()); len(got) == 0 {
		t.Fatal("running node: no address kept for its peer")
	}
	if len(a.ListenAddresses()) == 0 {
		t.Fatal("running node: no listen address")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a.AddPeerAddrs(b.ID(), []ma.Multiaddr{addr}, time.Minute)
	if got := a.PeerAddrs(b.ID()); got != nil {
		t.Errorf("closed node: PeerAddrs = %v, want nil", got)
	}
	if got := a.ListenAddresses(); got != nil {
		t.Errorf("closed node: ListenAddresses = %v, want nil", got)
	}
}
