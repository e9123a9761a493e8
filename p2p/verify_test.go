package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// useVerifier installs v for the test and restores go-libp2p's
// verification after it.
func useVerifier(t *testing.T, v Ed25519Verifier) {
	t.Helper()
	UseEd25519Verifier(v)
	t.Cleanup(func() { UseEd25519Verifier(nil) })
}

func TestEd25519KeysDecodedByGoLibp2pBehaveAsItsOwn(t *testing.T) {
	priv, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err := id.ExtractPublicKey() // as pubsub finds a message's key
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got.(*ed25519Key); !ok {
		t.Fatalf("go-libp2p decoded a %T, want the hook's key", got)
	}
	if !got.Equals(pub) || !pub.Equals(got) {
		t.Error("the decoded key and go-libp2p's own are not equal")
	}
	mine, _ := crypto.MarshalPublicKey(got)
	theirs, _ := crypto.MarshalPublicKey(pub)
	if !bytes.Equal(mine, theirs) {
		t.Error("the decoded key marshals differently from go-libp2p's")
	}
	if again, err := peer.IDFromPublicKey(got); err != nil || again != id {
		t.Errorf("peer ID of the decoded key: %s, %v; want %s", again, err, id)
	}
	msg := []byte("a message")
	sig, err := priv.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), sig...)
	bad[3] ^= 1
	check := func(how string) {
		t.Helper()
		if ok, err := got.Verify(msg, sig); !ok || err != nil {
			t.Errorf("%s: a valid signature: %v, %v", how, ok, err)
		}
		if ok, _ := got.Verify(msg, bad); ok {
			t.Errorf("%s: a changed signature is accepted", how)
		}
	}
	check("go-libp2p's verification")
	calls := 0
	useVerifier(t, func(pub, msg, sig []byte) bool {
		calls++
		return ed25519.Verify(pub, msg, sig)
	})
	check("the installed verifier")
	if calls != 2 {
		t.Errorf("the installed verifier was called %d times, want 2", calls)
	}
}

func TestGossipSignaturesGoThroughTheInstalledVerifier(t *testing.T) {
	a, b := startNode(t, nil), startNode(t, nil)
	connect(t, a, b)
	ta, tb := join(t, a, "group", nil), join(t, b, "group", nil)
	inb := collect(t, tb)
	waitTopicPeers(t, []*Topic{ta, tb}, func(int) int { return 1 })

	var mu sync.Mutex
	var keys [][]byte
	reject := false
	useVerifier(t, func(pub, msg, sig []byte) bool {
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, append([]byte(nil), pub...))
		return !reject && ed25519.Verify(pub, msg, sig)
	})
	ctx := context.Background()
	if err := ta.Publish(ctx, []byte("verified")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "b gets a's message", func() bool { return inb.has("verified") })
	raw, _ := a.host.Peerstore().PubKey(a.ID()).Raw()
	mu.Lock()
	// a's own publish is verified before it goes out, then b's copy.
	if len(keys) < 2 {
		t.Errorf("the verifier saw %d signatures, want a's publish and b's receipt", len(keys))
	}
	for _, k := range keys {
		if !bytes.Equal(k, raw) {
			t.Errorf("the verifier was given key %x, want a's %x", k, raw)
		}
	}
	reject = true
	mu.Unlock()
	// A verifier that rejects makes the publish fail at its source.
	if err := ta.Publish(ctx, []byte("rejected")); err == nil {
		t.Error("a publish whose signature the verifier rejects succeeded")
	}
}
