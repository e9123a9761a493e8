package p2p

import (
	"context"
	"strings"
	"testing"
)

// TestRedialGetsThroughTheDialBackoff: a peer dialled while it was down
// and back on the same address is refused by Connect for the swarm's
// backoff, and reached by Redial at once.
func TestRedialGetsThroughTheDialBackoff(t *testing.T) {
	a := startNode(t, nil)
	key := newKey(t)
	b := startNode(t, key)
	var addr string
	for _, m := range b.Addrs() {
		if s := m.String(); strings.Contains(s, "/tcp/") {
			addr, _, _ = strings.Cut(s, "/p2p/")
		}
	}
	ai := b.AddrInfo()
	b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := a.Connect(ctx, ai); err == nil {
		t.Fatal("connected to a closed node")
	}
	startNode(t, key, WithListenAddrs(addr)) // back, on the same address
	if err := a.Connect(ctx, ai); err == nil {
		t.Fatal("Connect got through at once: the test does not show the backoff")
	}
	if err := a.Redial(ctx, ai); err != nil {
		t.Fatalf("Redial: %v", err)
	}
	if !a.Connected(ai.ID) {
		t.Error("not connected after Redial")
	}
}
