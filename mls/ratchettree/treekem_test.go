package ratchettree

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// TestUpdatePathDoesNotDependOnCores makes the same UpdatePath, from the
// same randomness, with one core and with several: the HPKE encryptions
// and node keys run in parallel but read their randomness in path order,
// so the bytes must be equal (a deterministic reader gives a deterministic
// commit, as the vector tests and simulations rely on).
func TestUpdatePathDoesNotDependOnCores(t *testing.T) {
	cs := suite.CipherSuite(1)
	rng := rand.NewChaCha8([32]byte{1})
	tree := New(cs)
	var own LeafIndex
	var signer *suite.SignaturePrivateKey
	for i := range 40 {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			t.Fatal(err)
		}
		sk, err := cs.GenerateSignatureKey(rng)
		if err != nil {
			t.Fatal(err)
		}
		l := tree.AddLeaf(&wire.LeafNode{EncryptionKey: k.PublicKey(), SignatureKey: sk.PublicKey(), Credential: wire.Credential{Type: wire.CredentialBasic, Identity: []byte{byte(i)}}, Source: wire.LeafNodeSourceKeyPackage})
		if i == 17 {
			own, signer = l, sk
		}
	}
	// Some parents set, so that resolutions have one node or several.
	for x := NodeIndex(1); uint32(x) < tree.Width(); x += 4 {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			t.Fatal(err)
		}
		tree.SetParent(x, &wire.ParentNode{EncryptionKey: k.PublicKey()})
	}
	gid, gc := []byte("group"), []byte("group context")
	updatePath := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		tr := tree.Clone()
		r := rand.NewChaCha8([32]byte{2})
		o, err := tr.ApplyOwnPath(own, *tree.Leaf(own), signer, gid, r)
		if err != nil {
			t.Fatal(err)
		}
		up, err := tr.EncryptPath(o, gc, nil, r)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, node := range up.Nodes {
			n += len(node.EncryptedPathSecret)
		}
		if n < 4 {
			t.Fatalf("%d encryptions: too few to run in parallel", n)
		}
		return codec.MustMarshal(up)
	}
	one, two := updatePath(1), updatePath(2)
	if !bytes.Equal(one, two) {
		t.Fatal("the UpdatePath made on two cores differs from the one made on one")
	}
}
