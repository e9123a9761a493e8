package suite

import (
	"container/list"
	"crypto/ed25519"
	"sync"

	"github.com/parley-p2p/parley/mls/suite/internal/edverify"
)

// Ed25519 keys that sign again and again (a member's messages, an
// ordering layer's heads) are verified through a table of multiples of
// the key (edverify.Key), which makes a verification about 2.8 times
// faster but costs about 2.3 verifications to make and 30 KB to keep. A
// key earns its table by being verified keyCacheUses times within one
// window of keyCacheWindow verifications, so that a stream of keys each
// used once or rarely (a Welcome's leaves, a large group where everyone
// speaks in turn) never pays for tables it would not use; the
// keyCacheSize tables used most recently are kept.
const (
	keyCacheSize   = 256 // 7.5 MB of tables at most
	keyCacheUses   = 3
	keyCacheWindow = 1024
)

type keyCache struct {
	mu     sync.Mutex
	uses   map[[edverify.PublicKeySize]byte]uint8 // this window's uses of keys without a table
	calls  int                                    // verifications in this window
	keys   map[[edverify.PublicKeySize]byte]*list.Element
	recent list.List // of *edverify.Key, most recently used first
}

// ed25519Keys is the process's cache: keys are public and a table depends
// only on its key, so every group and every goroutine can share it.
var ed25519Keys = newKeyCache()

func newKeyCache() *keyCache {
	return &keyCache{
		uses: make(map[[edverify.PublicKeySize]byte]uint8),
		keys: make(map[[edverify.PublicKeySize]byte]*list.Element),
	}
}

// verify reports whether sig is an Ed25519 signature of msg by pub, as
// ed25519.Verify does; pub must be 32 bytes.
func (c *keyCache) verify(pub, msg, sig []byte) bool {
	if k := c.key(pub); k != nil {
		return k.Verify(msg, sig)
	}
	return ed25519.Verify(pub, msg, sig)
}

// key returns pub's table, making it when pub has earned one; nil means
// verify without.
func (c *keyCache) key(pub []byte) *edverify.Key {
	id := [edverify.PublicKeySize]byte(pub)
	c.mu.Lock()
	if e, ok := c.keys[id]; ok {
		c.recent.MoveToFront(e)
		c.mu.Unlock()
		return e.Value.(*edverify.Key)
	}
	if c.calls++; c.calls > keyCacheWindow {
		clear(c.uses)
		c.calls = 1
	}
	n := c.uses[id] + 1
	if n < keyCacheUses {
		c.uses[id] = n
		c.mu.Unlock()
		return nil
	}
	delete(c.uses, id)
	c.mu.Unlock()

	k, err := edverify.NewKey(pub)
	if err != nil {
		return nil // not a point: ed25519.Verify rejects it too
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.keys[id]; ok { // made meanwhile by another goroutine
		return e.Value.(*edverify.Key)
	}
	c.keys[id] = c.recent.PushFront(k)
	if c.recent.Len() > keyCacheSize {
		old := c.recent.Remove(c.recent.Back()).(*edverify.Key)
		delete(c.keys, old.Bytes())
	}
	return k
}

// VerifyEd25519Repeated reports whether sig is an Ed25519 signature of msg
// by pub, accepting and rejecting exactly what crypto/ed25519.Verify does,
// through the process's tables (keyCache), those MLS verifies with.
func VerifyEd25519Repeated(pub, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519Keys.verify(pub, msg, sig)
}

// NewRepeatedVerifier returns a verifier like VerifyEd25519Repeated with
// tables of its own (at most keyCacheSize, earned as there): for keys that
// sign again and again outside MLS, such as peers' transport signatures,
// whose churn (anyone on a topic can sign with new keys) then never evicts
// the tables of the members' MLS keys. Safe for concurrent use.
func NewRepeatedVerifier() func(pub, msg, sig []byte) bool {
	c := newKeyCache()
	return func(pub, msg, sig []byte) bool {
		if len(pub) != ed25519.PublicKeySize {
			return false
		}
		return c.verify(pub, msg, sig)
	}
}
