package suite

import (
	"crypto/ed25519"
	"encoding/binary"
	"sync"
	"testing"
)

func cacheKey(i int) (ed25519.PublicKey, ed25519.PrivateKey) {
	seed := make([]byte, ed25519.SeedSize)
	binary.BigEndian.PutUint64(seed, uint64(i)+1)
	priv := ed25519.NewKeyFromSeed(seed)
	return priv.Public().(ed25519.PublicKey), priv
}

func TestKeyCacheMakesATableOnTheThirdUseAndAgrees(t *testing.T) {
	c := newKeyCache()
	pub, priv := cacheKey(0)
	msg := []byte("hello")
	sig := ed25519.Sign(priv, msg)
	bad := append([]byte(nil), sig...)
	bad[5] ^= 1
	for i := range 6 {
		if !c.verify(pub, msg, sig) {
			t.Fatalf("use %d: a valid signature is rejected", i+1)
		}
		if c.verify(pub, msg, bad) {
			t.Fatalf("use %d: a changed signature is accepted", i+1)
		}
		if c.verify(pub, []byte("hellO"), sig) {
			t.Fatalf("use %d: a signature of another message is accepted", i+1)
		}
		// Three uses, good or bad, earn the key its table.
		if got := c.len(); got != 1 {
			t.Fatalf("after %d rounds of 3 uses: %d tables, want 1", i+1, got)
		}
	}
	// An invalid key (not a point) never gets a table and never verifies.
	notPoint := make([]byte, 32)
	notPoint[0] = 2 // y = 2 has no x on the curve
	for range 5 {
		if c.verify(notPoint, msg, sig) {
			t.Fatal("a signature under a key that is not a point is accepted")
		}
	}
	if got := c.len(); got != 1 {
		t.Fatalf("%d tables after an invalid key's uses, want 1", got)
	}
}

func TestKeyCacheIgnoresKeysUsedRarely(t *testing.T) {
	c := newKeyCache()
	// 2,000 keys used in turn, three times each: no key comes back within
	// a window of keyCacheWindow verifications, so none earns a table.
	const n = 2000
	pubs := make([]ed25519.PublicKey, n)
	for i := range n {
		pubs[i], _ = cacheKey(i)
	}
	for round := range 3 {
		for i := range n {
			if c.key(pubs[i]) != nil {
				t.Fatalf("round %d: key %d has a table", round+1, i)
			}
		}
	}
	if got := c.len(); got != 0 {
		t.Fatalf("%d tables for keys used once per window, want 0", got)
	}
	// The same three uses close together do earn one.
	for range keyCacheUses - 1 {
		if c.key(pubs[0]) != nil {
			t.Fatal("a table before the third use")
		}
	}
	if c.key(pubs[0]) == nil {
		t.Fatal("no table on the third use in a window")
	}
}

func TestKeyCacheKeepsTheMostRecentTables(t *testing.T) {
	c := newKeyCache()
	msg := []byte("m")
	const n = keyCacheSize + 20
	for i := range n {
		pub, priv := cacheKey(i)
		sig := ed25519.Sign(priv, msg)
		for range keyCacheUses {
			if !c.verify(pub, msg, sig) {
				t.Fatalf("key %d: a valid signature is rejected", i)
			}
		}
	}
	if got := c.len(); got != keyCacheSize {
		t.Fatalf("%d tables, want %d", got, keyCacheSize)
	}
	// The first keys were evicted, the last are held.
	first, _ := cacheKey(0)
	last, _ := cacheKey(n - 1)
	c.mu.Lock()
	_, hasFirst := c.keys[[32]byte(first)]
	_, hasLast := c.keys[[32]byte(last)]
	c.mu.Unlock()
	if hasFirst || !hasLast {
		t.Fatalf("holds the first key: %v, the last: %v; want false, true", hasFirst, hasLast)
	}
}

func TestKeyCacheConcurrentUse(t *testing.T) {
	c := newKeyCache()
	msg := []byte("m")
	var wg sync.WaitGroup
	errs := make(chan int, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				pub, priv := cacheKey(i % 5)
				sig := ed25519.Sign(priv, msg)
				if !c.verify(pub, msg, sig) {
					errs <- g
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for g := range errs {
		t.Errorf("goroutine %d: a valid signature is rejected", g)
	}
	if got := c.len(); got != 5 {
		t.Fatalf("%d tables for 5 keys, want 5", got)
	}
}

func TestVerifyWithLabelRepeatedAgrees(t *testing.T) {
	cs := CipherSuite(1)
	k, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("content")
	sig, err := cs.SignWithLabel(k, "FramedContentTBS", content, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := cs.VerifyWithLabelRepeated(k.PublicKey(), "FramedContentTBS", content, sig); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
		if err := cs.VerifyWithLabelRepeated(k.PublicKey(), "LeafNodeTBS", content, sig); err == nil {
			t.Fatalf("use %d: a signature under another label is accepted", i+1)
		}
	}
	if err := cs.VerifyWithLabelRepeated(k.PublicKey()[:31], "FramedContentTBS", content, sig); err == nil {
		t.Fatal("a 31-byte key is accepted")
	}
}

// len reports the number of tables held.
func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.recent.Len()
}

func TestVerifyEd25519RepeatedAgrees(t *testing.T) {
	for _, c := range []struct {
		name   string
		verify func(pub, msg, sig []byte) bool
	}{{"VerifyEd25519Repeated", VerifyEd25519Repeated}, {"NewRepeatedVerifier", NewRepeatedVerifier()}} {
		pub, priv := cacheKey(7)
		msg := []byte("libp2p-pubsub:message")
		sig := ed25519.Sign(priv, msg)
		bad := append([]byte(nil), sig...)
		bad[40] ^= 1
		// Past keyCacheUses, the key is verified through its table.
		for i := range 2 * keyCacheUses {
			if !c.verify(pub, msg, sig) {
				t.Fatalf("%s, use %d: a valid signature is rejected", c.name, i+1)
			}
			if c.verify(pub, msg, bad) || c.verify(pub, msg[1:], sig) || c.verify(pub, msg, sig[:63]) {
				t.Fatalf("%s, use %d: a changed signature, message or a short signature is accepted", c.name, i+1)
			}
		}
		if c.verify(pub[:31], msg, sig) {
			t.Fatalf("%s: a 31-byte key is accepted", c.name)
		}
	}
}

// TestRepeatedVerifiersKeepTheirOwnTables: a key verified often through a
// verifier of its own gets its table there, not among MLS's.
func TestRepeatedVerifiersKeepTheirOwnTables(t *testing.T) {
	pub, priv := cacheKey(11)
	msg := []byte("a transport signature")
	sig := ed25519.Sign(priv, msg)
	v := NewRepeatedVerifier()
	for range 2 * keyCacheUses {
		if !v(pub, msg, sig) {
			t.Fatal("a valid signature is rejected")
		}
	}
	ed25519Keys.mu.Lock()
	_, shared := ed25519Keys.keys[[32]byte(pub)]
	ed25519Keys.mu.Unlock()
	if shared {
		t.Error("the key's table is among MLS's")
	}
}
