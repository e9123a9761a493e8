package p2p

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestAListenAddressInUseIsAnError: a second node given the TCP address
// another node listens on refuses to start (with SO_REUSEPORT, which
// libp2p sets, both listened and shared the connections).
func TestAListenAddressInUseIsAnError(t *testing.T) {
	first := startNode(t, nil)
	var addr string
	for _, a := range first.Host().Network().ListenAddresses() {
		if s := a.String(); strings.HasPrefix(s, "/ip4/127.0.0.1/tcp/") {
			addr = s
		}
	}
	if addr == "" {
		t.Fatal("the first node listens on no loopback TCP address")
	}
	n, err := New(newKey(t), append(testOptions(addr), WithLogger(testLogger()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), waitShort)
	defer cancel()
	if err := n.Start(ctx); !errors.Is(err, ErrAddressInUse) {
		t.Fatalf("starting on %s, which another node listens on: %v, want ErrAddressInUse", addr, err)
	}
	// Port 0 and free ports are fine.
	startNode(t, nil)
}
