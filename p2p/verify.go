package p2p

import (
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
	if v := ed25519Verifier.Load(); v != nil {
		return (*v)(k.raw, data, sig), nil
	}
	return k.PubKey.Verify(data, sig)
}
