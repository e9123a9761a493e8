package p2p

import (
	"crypto/ed25519"
	"crypto/sha256"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// Every gossip message carries its author's Ed25519 signature (StrictSign),
// which go-libp2p-pubsub verifies at every receiver and, for a node's own
// publish, at the sender too: with go-libp2p's keys, one variable-base
// verification each, the largest part of a raw gossipsub message's CPU. A
// node verifies the same few keys again and again (its groups' members),
// which a verifier keeping a table of multiples per key does several times
// faster. UseEd25519Verifier installs such a verifier for every Ed25519
// key go-libp2p decodes from then on in this process (a peer ID's inlined
// key, as pubsub's verification decodes it); p2p cannot import mls, so the
// node hands it mls/suite's.
//
// The hook is go-libp2p's own: crypto.PubKeyUnmarshallers, set once here
// when the package is initialised, before any host runs. Its keys behave
// as go-libp2p's in everything but Verify, and verify through go-libp2p's
// own key while no verifier is installed.

// Ed25519Verifier reports whether sig is an Ed25519 signature of msg by
// the 32-byte key pub. It must accept and reject exactly what
// crypto/ed25519.Verify does, and be safe for concurrent use.
type Ed25519Verifier func(pub, msg, sig []byte) bool

var ed25519Verifier atomic.Pointer[Ed25519Verifier]

// UseEd25519Verifier makes v verify the transport's Ed25519 signatures in
// this process; nil restores go-libp2p's verification.
func UseEd25519Verifier(v Ed25519Verifier) {
	if v == nil {
		ed25519Verifier.Store(nil)
		return
	}
	ed25519Verifier.Store(&v)
}

func init() {
	decode := crypto.PubKeyUnmarshallers[pb.KeyType_Ed25519]
	crypto.PubKeyUnmarshallers[pb.KeyType_Ed25519] = func(data []byte) (crypto.PubKey, error) {
		k, err := decode(data)
		if err != nil {
			return nil, err
		}
		return &ed25519Key{PubKey: k, raw: append([]byte(nil), data...)}, nil
	}
}

// ed25519Key is go-libp2p's Ed25519 public key with Verify through the
// installed verifier. Type, Raw and Equals are go-libp2p's, so it marshals,
// compares and makes peer IDs as go-libp2p's does.
type ed25519Key struct {
	crypto.PubKey
	raw []byte
}

func (k *ed25519Key) Verify(data, sig []byte) (bool, error) {
	if madeHere(k.raw, data, sig) {
		return true, nil
	}
	if v := ed25519Verifier.Load(); v != nil {
		return (*v)(k.raw, data, sig), nil
	}
	return k.PubKey.Verify(data, sig)
}

// A node's own publish is verified too, by pubsub, right after its host's
// key signed it (in Topic.Publish, on the same goroutine, before the
// message goes anywhere): a verification of a signature this process has
// just made. The host's key (see newHost) remembers what it signed lately,
// and the first verification of exactly such a signature, by the same key
// of the same bytes, is answered from that memory without the curve
// arithmetic; the memory is then forgotten, so that another node in the
// same process (tests, benchmarks) verifies its copy as a peer would.
// Anything else, a peer's signature above all, is verified.

// ownSignaturesKept bounds the signatures remembered: a publish verifies
// its signature as soon as it is made, so a few suffice for many groups
// publishing at once.
const ownSignaturesKept = 256

// ownSignature is a signature made in this process: by the Ed25519 key
// pub, of the bytes whose SHA-256 is sum.
type ownSignature struct {
	pub [ed25519.PublicKeySize]byte
	sum [sha256.Size]byte
}

// ownSignatures are the signatures made lately, by signature, with their
// order of arrival to forget the oldest.
var ownSignatures struct {
	sync.Mutex
	made  map[[ed25519.SignatureSize]byte]ownSignature
	order [][ed25519.SignatureSize]byte
}

func rememberSignature(pub, data, sig []byte) {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return
	}
	s := [ed25519.SignatureSize]byte(sig)
	o := ownSignature{pub: [ed25519.PublicKeySize]byte(pub), sum: sha256.Sum256(data)}
	m := &ownSignatures
	m.Lock()
	defer m.Unlock()
	if m.made == nil {
		m.made = make(map[[ed25519.SignatureSize]byte]ownSignature, ownSignaturesKept)
	}
	if _, ok := m.made[s]; !ok {
		if len(m.order) == ownSignaturesKept {
			delete(m.made, m.order[0])
			m.order = m.order[1:]
		}
		m.order = append(m.order, s)
	}
	m.made[s] = o
}

// madeHere reports whether sig is a signature of data by pub that this
// process made lately and nobody verified yet; if so, it is forgotten.
func madeHere(pub, data, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	s := [ed25519.SignatureSize]byte(sig)
	m := &ownSignatures
	m.Lock()
	o, ok := m.made[s]
	m.Unlock()
	if !ok || o.pub != [ed25519.PublicKeySize]byte(pub) || o.sum != sha256.Sum256(data) {
		return false
	}
	m.Lock()
	_, ok = m.made[s]
	delete(m.made, s)
	m.Unlock()
	return ok
}

// rememberingKey is an Ed25519 identity key that remembers the signatures
// it makes. Everything else is the key's own.
type rememberingKey struct {
	crypto.PrivKey
	pub []byte
}

// rememberSignatures returns key, remembering its signatures if it is an
// Ed25519 key.
func rememberSignatures(key crypto.PrivKey) crypto.PrivKey {
	if key.Type() != pb.KeyType_Ed25519 {
		return key
	}
	pub, err := key.GetPublic().Raw()
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return key
	}
	return &rememberingKey{PrivKey: key, pub: pub}
}

func (k *rememberingKey) Sign(data []byte) ([]byte, error) {
	sig, err := k.PrivKey.Sign(data)
	if err == nil {
		rememberSignature(k.pub, data, sig)
	}
	return sig, err
}
