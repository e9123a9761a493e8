package p2p

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"

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
	// b's copy is verified with a's key; a's own publish, verified by
	// pubsub before it goes out, is answered from what a's key signed.
	if len(keys) != 1 {
		t.Errorf("the verifier saw %d signatures, want b's receipt only", len(keys))
	}
	for _, k := range keys {
		if !bytes.Equal(k, raw) {
			t.Errorf("the verifier was given key %x, want a's %x", k, raw)
		}
	}
	reject = true
	mu.Unlock()
	// A verifier that rejects keeps a's next message from b.
	if err := ta.Publish(ctx, []byte("rejected")); err != nil {
		t.Fatal(err)
	}
	if err := ta.Publish(ctx, []byte("rejected too")); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitShort, "b's verifier sees a's next messages", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(keys) >= 3
	})
	time.Sleep(100 * time.Millisecond)
	if inb.has("rejected") || inb.has("rejected too") {
		t.Error("b took messages whose signatures its verifier rejected")
	}
}

func TestOnlyTheSignaturesAKeyMadeHereSkipVerification(t *testing.T) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key := rememberSignatures(priv)
	if !key.Equals(priv) || !key.GetPublic().Equals(priv.GetPublic()) {
		t.Fatal("the remembering key is not the key")
	}
	if a, b := peerID(t, key), peerID(t, priv); a != b {
		t.Fatalf("peer ID %s, want the key's %s", a, b)
	}
	pub, err := peerID(t, key).ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	useVerifier(t, func(pub, msg, sig []byte) bool {
		calls++
		return ed25519.Verify(pub, msg, sig)
	})
	msg := []byte("signed here")
	sig, err := key.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := pub.Verify(msg, sig); !ok || err != nil || calls != 0 {
		t.Errorf("own signature: %v, %v, %d verifications; want true without any", ok, err, calls)
	}
	// Its next verification, another node's in this process, is made.
	if ok, err := pub.Verify(msg, sig); !ok || err != nil || calls != 1 {
		t.Errorf("own signature verified again: %v, %v, %d verifications; want true after 1", ok, err, calls)
	}
	sig, err = key.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	// The same signature of other bytes, a changed signature, and the
	// signature under another key are verified, and fail.
	bad := append([]byte(nil), sig...)
	bad[5] ^= 1
	otherPub, _ := peerID(t, other).ExtractPublicKey()
	for _, c := range []struct {
		name string
		pub  crypto.PubKey
		msg  []byte
		sig  []byte
	}{
		{"other bytes", pub, []byte("signed elsewhere"), sig},
		{"changed signature", pub, msg, bad},
		{"another key", otherPub, msg, sig},
	} {
		before := calls
		if ok, _ := c.pub.Verify(c.msg, c.sig); ok {
			t.Errorf("%s: accepted", c.name)
		}
		if calls != before+1 {
			t.Errorf("%s: not verified", c.name)
		}
	}
	// A signature by a key that does not remember is verified as usual.
	plain, err := priv.Sign([]byte("not remembered"))
	if err != nil {
		t.Fatal(err)
	}
	before := calls
	if ok, _ := pub.Verify([]byte("not remembered"), plain); !ok || calls != before+1 {
		t.Errorf("a signature not made through the remembering key: %v after %d verifications", ok, calls-before)
	}
	// Only the latest signatures are kept.
	for i := range ownSignaturesKept {
		if _, err := key.Sign(fmt.Appendf(nil, "filler %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	before = calls
	if ok, _ := pub.Verify(msg, sig); !ok || calls != before+1 {
		t.Errorf("a signature older than the last %d: %v after %d verifications, want verified", ownSignaturesKept, ok, calls-before)
	}
}

func peerID(t *testing.T, k crypto.PrivKey) peer.ID {
	t.Helper()
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
