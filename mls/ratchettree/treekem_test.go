package ratchettree

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// TestUpdatePathOnAllCores makes the same UpdatePath, from the
// same randomness, with one core and with several: the HPKE encryptions
// and node keys run in parallel but read their randomness in path order,
// so the bytes must be equal (a deterministic reader gives a deterministic
// commit, as the vector tests and simulations rely on).
func TestUpdatePathOnAllCores(t *testing.T) {
	tree, leafKeys, own, signer, rng := pathTestTree(t, 40, 17)
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

	// Leaf 16, the committer's sibling, decrypts the lowest path secret and
	// derives every key above it; a path key that does not match is
	// refused and nothing is kept.
	tr := tree.Clone()
	o, err := tr.ApplyOwnPath(own, *tree.Leaf(own), signer, gid, rng)
	if err != nil {
		t.Fatal(err)
	}
	up, err := tr.EncryptPath(o, gc, nil, rng)
	if err != nil {
		t.Fatal(err)
	}
	recv := NewPrivateKeys(16, leafKeys[16])
	secret, err := recv.Clone().DecryptPath(tree, own, up, gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(secret, o.CommitSecret) {
		t.Fatal("the receiver's commit secret differs from the committer's")
	}
	bad := *up
	bad.Nodes = append([]wire.UpdatePathNode(nil), up.Nodes...)
	bad.Nodes[len(bad.Nodes)-2].EncryptionKey = up.Nodes[len(up.Nodes)-1].EncryptionKey
	before := len(recv.keys)
	if _, err := recv.DecryptPath(tree, own, &bad, gc, nil); !errors.Is(err, ErrPathKey) {
		t.Fatalf("DecryptPath with a wrong path key: %v, want %v", err, ErrPathKey)
	}
	if len(recv.keys) != before {
		t.Fatalf("a refused path left %d keys, want %d", len(recv.keys), before)
	}
}

// pathTestTree makes a tree of n members with HPKE keys (returned by
// leaf), some parents set so that resolutions have one node or several, and
// the signer of the member at leaf own.
func pathTestTree(tb testing.TB, n, own int) (*Tree, []*suite.HPKEPrivateKey, LeafIndex, *suite.SignaturePrivateKey, *rand.ChaCha8) {
	tb.Helper()
	cs := suite.CipherSuite(1)
	rng := rand.NewChaCha8([32]byte{1})
	tree := New(cs)
	var signer *suite.SignaturePrivateKey
	var leafKeys []*suite.HPKEPrivateKey
	for i := range n {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		sk, err := cs.GenerateSignatureKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		leafKeys = append(leafKeys, k)
		tree.AddLeaf(&wire.LeafNode{EncryptionKey: k.PublicKey(), SignatureKey: sk.PublicKey(), Credential: wire.Credential{Type: wire.CredentialBasic, Identity: []byte{byte(i), byte(i >> 8)}}, Source: wire.LeafNodeSourceKeyPackage})
		if i == own {
			signer = sk
		}
	}
	for x := NodeIndex(1); uint32(x) < tree.Width(); x += 4 {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		tree.SetParent(x, &wire.ParentNode{EncryptionKey: k.PublicKey()})
	}
	return tree, leafKeys, LeafIndex(own), signer, rng
}

// BenchmarkDecryptPath is the worst case of processing a commit with path
// in a group of 1,024: the committer's sibling derives the key of every
// node of the path (compare -cpu 1,2).
func BenchmarkDecryptPath(b *testing.B) {
	tree, leafKeys, own, signer, rng := pathTestTree(b, 1024, 1)
	gid, gc := []byte("group"), []byte("group context")
	tr := tree.Clone()
	o, err := tr.ApplyOwnPath(own, *tree.Leaf(own), signer, gid, rng)
	if err != nil {
		b.Fatal(err)
	}
	up, err := tr.EncryptPath(o, gc, nil, rng)
	if err != nil {
		b.Fatal(err)
	}
	recv := NewPrivateKeys(0, leafKeys[0])
	for b.Loop() {
		if _, err := recv.Clone().DecryptPath(tree, own, up, gc, nil); err != nil {
			b.Fatal(err)
		}
	}
}
