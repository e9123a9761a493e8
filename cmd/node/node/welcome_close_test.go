package node

import (
	"sync/atomic"
	"testing"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// A Welcome kept just before the node closes is pushed by a goroutine
// that Close waits for: it must neither crash on the closed host (CI saw
// a nil host dereferenced in pushWelcome) nor outlive the node.
func TestWelcomeKeptAsTheNodeClosesDoesNotOutliveIt(t *testing.T) {
	for i := range 5 {
		n := testNode(t, "alice")
		joiner := memberID(t, "joiner")
		p, _, err := ParseMemberID(joiner)
		if err != nil {
			t.Fatal(err)
		}
		// An address where nobody listens: the push dials and fails.
		n.p2p.AddPeerAddrs(p, []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/9")}, time.Minute)
		n.keepWelcome(joiner, []byte("group-id"), []byte{byte(i), 1, 2, 3})
		if err := n.Close(); err != nil {
			t.Fatal(err)
		}
		// Once Close has begun nothing more starts: a goroutine asked for
		// now never runs, so wg.Wait below would have waited for it.
		var ran atomic.Bool
		n.goBackground(func() { ran.Store(true) })
		n.wg.Wait()
		if ran.Load() {
			t.Fatal("a background goroutine started after Close")
		}
		if n.p2p.PeerAddrs(p) != nil {
			t.Fatal("a closed node still answers for its peerstore")
		}
	}
}
