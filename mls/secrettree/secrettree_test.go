package secrettree

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
)

const cs = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

func newPair(cfg Config) (sender, receiver *Tree) {
	secret := bytes.Repeat([]byte{7}, cs.Nh())
	return New(cs, secret, 4, cfg), New(cs, secret, 4, cfg)
}

// send returns the keys of the next n messages of leaf 1.
func send(t *testing.T, tr *Tree, n int) []KeyNonce {
	t.Helper()
	var out []KeyNonce
	for range n {
		kn, err := tr.Next(1, Application)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, kn)
	}
	return out
}

func open(tr *Tree, kn KeyNonce) error {
	return tr.Open(1, Application, kn.Generation, func(key, nonce []byte) error {
		if !bytes.Equal(key, kn.Key) || !bytes.Equal(nonce, kn.Nonce) {
			return errors.New("key mismatch")
		}
		return nil
	})
}

func TestOutOfOrderWithinWindowDecrypts(t *testing.T) {
	s, r := newPair(Config{OutOfOrderWindow: 8, MaxForwardDistance: 100})
	keys := send(t, s, 6)
	for _, i := range []int{5, 0, 3, 1, 4, 2} {
		if err := open(r, keys[i]); err != nil {
			t.Errorf("generation %d: %v", i, err)
		}
	}
}

func TestReplayIsRejected(t *testing.T) {
	s, r := newPair(DefaultConfig)
	keys := send(t, s, 3)
	for _, kn := range keys {
		if err := open(r, kn); err != nil {
			t.Fatal(err)
		}
	}
	for _, kn := range keys {
		if err := open(r, kn); !errors.Is(err, ErrSecretConsumed) {
			t.Errorf("replay of generation %d: err = %v, want ErrSecretConsumed", kn.Generation, err)
		}
	}
}

func TestSkippedKeysBeyondWindowAreDeleted(t *testing.T) {
	s, r := newPair(Config{OutOfOrderWindow: 2, MaxForwardDistance: 100})
	keys := send(t, s, 5)
	if err := open(r, keys[4]); err != nil {
		t.Fatal(err)
	}
	// Generations 0..3 were skipped in one jump wider than the window:
	// the ends are kept (0, nearest to where the ratchet was: the message
	// still in flight when a sender restored from a snapshot jumps far
	// ahead; 3, just before the one opened: an ordinary reordering).
	for i, want := range []error{nil, ErrSecretConsumed, ErrSecretConsumed, nil} {
		if err := open(r, keys[i]); !errors.Is(err, want) {
			t.Errorf("generation %d: err = %v, want %v", i, err, want)
		}
	}
	// Skips within the window, one after another: the oldest go first.
	keys = send(t, s, 6) // generations 5..10
	for _, i := range []int{1, 3, 5} {
		if err := open(r, keys[i]); err != nil { // 6, 8, 10: skipping 5, 7, 9
			t.Fatal(err)
		}
	}
	for i, want := range []error{ErrSecretConsumed, nil, nil} { // 5 evicted; 7, 9 kept
		if err := open(r, keys[2*i]); !errors.Is(err, want) {
			t.Errorf("generation %d: err = %v, want %v", keys[2*i].Generation, err, want)
		}
	}
}

func TestGenerationFarAheadCostsNothing(t *testing.T) {
	_, r := newPair(DefaultConfig)
	called := false
	// Warm up the leaf's ratchets so the measured call derives nothing.
	_ = r.Open(1, Application, 1<<31, func(_, _ []byte) error { called = true; return nil })
	allocs := testing.AllocsPerRun(50, func() {
		err := r.Open(1, Application, 1<<31, func(_, _ []byte) error { called = true; return nil })
		if !errors.Is(err, ErrTooFarAhead) {
			t.Fatalf("err = %v, want ErrTooFarAhead", err)
		}
	})
	if called {
		t.Error("open callback ran for a generation beyond the forward limit")
	}
	if allocs > 0 {
		t.Errorf("rejecting generation 2^31 allocated %v times", allocs)
	}
}

func TestFailedOpenLeavesRatchetUnchanged(t *testing.T) {
	s, r := newPair(DefaultConfig)
	keys := send(t, s, 3)
	bad := errors.New("forged")
	if err := r.Open(1, Application, 2, func(_, _ []byte) error { return bad }); !errors.Is(err, bad) {
		t.Fatalf("err = %v, want the callback's error", err)
	}
	for _, kn := range keys {
		if err := open(r, kn); err != nil {
			t.Errorf("generation %d after failed open: %v", kn.Generation, err)
		}
	}
}

func TestLeafOutOfRange(t *testing.T) {
	_, r := newPair(DefaultConfig)
	if _, err := r.Next(4, Handshake); !errors.Is(err, ErrLeafOutOfRange) {
		t.Errorf("Next(4): err = %v", err)
	}
	if err := r.Open(treemath.LeafIndex(1<<31), Handshake, 0, nil); !errors.Is(err, ErrLeafOutOfRange) {
		t.Errorf("Open(2^31): err = %v", err)
	}
}

func TestConsumedSecretsAreOverwritten(t *testing.T) {
	tr := New(cs, bytes.Repeat([]byte{7}, cs.Nh()), 4, DefaultConfig)
	root := tr.nodes[treemath.Root(4)]
	if _, err := tr.Next(0, Handshake); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(root, make([]byte, len(root))) {
		t.Error("root secret not overwritten after its children were derived")
	}
	if _, ok := tr.nodes[treemath.Root(4)]; ok {
		t.Error("root secret still held")
	}
	// Leaf 0's path consumed nodes 3 and 1; their other children remain.
	for _, n := range []treemath.NodeIndex{5, 2} {
		if _, ok := tr.nodes[n]; !ok {
			t.Errorf("node %d secret missing", n)
		}
	}
	r := tr.ratchets[ratchetID{0, Handshake}]
	old := r.secret
	if _, err := tr.Next(0, Handshake); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(old, make([]byte, len(old))) {
		t.Error("ratchet secret not overwritten after advancing")
	}
}

func TestSkipMovesPastGenerationsAReceiverStillAccepts(t *testing.T) {
	s, r := newPair(Config{OutOfOrderWindow: 8, MaxForwardDistance: 100})
	if err := s.Skip(1, Application, 50); err != nil {
		t.Fatal(err)
	}
	keys := send(t, s, 1)
	if keys[0].Generation != 50 {
		t.Fatalf("generation %d after skipping 50", keys[0].Generation)
	}
	if err := open(r, keys[0]); err != nil {
		t.Errorf("receiver refused the jump: %v", err)
	}
}
