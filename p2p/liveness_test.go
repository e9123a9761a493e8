package p2p

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// TestLivenessChild is the peer TestPeerKilledGoesOfflineWithinSeconds
// kills: a node in a process of its own, on QUIC over loopback, that
// prints its address and waits to be killed.
func TestLivenessChild(t *testing.T) {
	if os.Getenv("PARLEY_LIVENESS_CHILD") != "1" {
		t.Skip("run by TestPeerKilledGoesOfflineWithinSeconds")
	}
	n := startNode(t, nil, WithListenAddrs(quic4))
	json.NewEncoder(os.Stdout).Encode(n.AddrInfo())
	<-make(chan struct{})
}

// TestPeerKilledGoesOfflineWithinSeconds: a peer killed with kill -9
// sends nothing more, and over QUIC its connection would stay open until
// the 30 s idle timeout (with liveness off it is still connected 3 s
// after the kill); with pings every 200 ms it is closed, and the peer no
// longer Connected, within a few seconds.
func TestPeerKilledGoesOfflineWithinSeconds(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	for _, c := range []struct {
		name    string
		every   time.Duration
		offline bool // within 3 s of the kill
	}{
		{"liveness off", 0, false},
		{"pings every 200ms", 200 * time.Millisecond, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestLivenessChild$", "-test.v")
			cmd.Env = append(os.Environ(), "PARLEY_LIVENESS_CHILD=1")
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			var child peer.AddrInfo
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if json.Unmarshal(sc.Bytes(), &child) == nil && child.ID != "" {
					break
				}
			}
			if child.ID == "" {
				t.Fatalf("the child printed no address (%v)", sc.Err())
			}
			go func() { // drain the rest, so that the child never blocks
				for sc.Scan() {
				}
			}()
			n := startNode(t, nil, WithListenAddrs(quic4), WithLiveness(c.every))
			ctx, cancel := context.WithTimeout(context.Background(), waitShort)
			defer cancel()
			if err := n.Connect(ctx, child); err != nil {
				t.Fatal(err)
			}
			eventually(t, waitShort, "connected to the child", func() bool { return n.Connected(child.ID) })
			// Two rounds of pings answered: the live peer stays.
			if c.every > 0 {
				deadline := time.Now().Add(3 * c.every)
				for time.Now().Before(deadline) {
					if !n.Connected(child.ID) {
						t.Fatal("a live peer that answers pings was disconnected")
					}
					<-time.After(c.every / 4)
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed := time.Now()
			deadline := killed.Add(3 * time.Second)
			for n.Connected(child.ID) && time.Now().Before(deadline) {
				<-time.After(20 * time.Millisecond)
			}
			offline := !n.Connected(child.ID)
			t.Logf("connected %v, %.1fs after kill -9", !offline, time.Since(killed).Seconds())
			if offline != c.offline {
				t.Fatalf("offline within 3s of kill -9: %v, want %v", offline, c.offline)
			}
		})
	}
}
