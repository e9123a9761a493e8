package ratchettree

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// pathFixture is a tree of members with HPKE keys (leafKeys, by leaf) and
// some parents set, so that resolutions have one node or several, and the
// signer of the member at leaf own.
type pathFixture struct {
	tree     *Tree
	leafKeys []*suite.HPKEPrivateKey
	own      LeafIndex
	signer   *suite.SignaturePrivateKey
}

var pathGroupContext = []byte("group context")

func newPathFixture(tb testing.TB, n, own int) *pathFixture {
	tb.Helper()
	cs := suite.CipherSuite(1)
	rng := rand.NewChaCha8([32]byte{1})
	f := &pathFixture{tree: New(cs), own: LeafIndex(own)}
	for i := range n {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		sk, err := cs.GenerateSignatureKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		f.leafKeys = append(f.leafKeys, k)
		f.tree.AddLeaf(&wire.LeafNode{EncryptionKey: k.PublicKey(), SignatureKey: sk.PublicKey(), Credential: wire.Credential{Type: wire.CredentialBasic, Identity: []byte{byte(i), byte(i >> 8)}}, Source: wire.LeafNodeSourceKeyPackage})
		if i == own {
			f.signer = sk
		}
	}
	for x := NodeIndex(1); uint32(x) < f.tree.Width(); x += 4 {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		f.tree.SetParent(x, &wire.ParentNode{EncryptionKey: k.PublicKey()})
	}
	return f
}

// updatePath makes the own member's UpdatePath on a clone of the tree,
// with randomness from r.
func (f *pathFixture) updatePath(tb testing.TB, r io.Reader) (*OwnPath, *wire.UpdatePath) {
	tb.Helper()
	tr := f.tree.Clone()
	o, err := tr.ApplyOwnPath(f.own, *f.tree.Leaf(f.own), f.signer, []byte("group"), r)
	if err != nil {
		tb.Fatal(err)
	}
	up, err := tr.EncryptPath(o, pathGroupContext, nil, r)
	if err != nil {
		tb.Fatal(err)
	}
	return o, up
}

// TestUpdatePathOnAllCores makes the same UpdatePath, from the same
// randomness, with one core and with several: the HPKE encryptions and
// node keys run in parallel but read their randomness in path order, so
// the bytes must be equal (a deterministic reader gives a deterministic
// commit, as the simulations rely on). The committer's sibling then
// decrypts it and derives every key above its path secret, in parallel
// too, and refuses a path whose key does not match.
func TestUpdatePathOnAllCores(t *testing.T) {
	f := newPathFixture(t, 40, 17)
	encode := func(procs int) []byte {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		_, up := f.updatePath(t, rand.NewChaCha8([32]byte{2}))
		n := 0
		for _, node := range up.Nodes {
			n += len(node.EncryptedPathSecret)
		}
		if n < 4 {
			t.Fatalf("%d encryptions: too few to run in parallel", n)
		}
		return codec.MustMarshal(up)
	}
	if !bytes.Equal(encode(1), encode(2)) {
		t.Fatal("the UpdatePath made on two cores differs from the one made on one")
	}

	o, up := f.updatePath(t, rand.NewChaCha8([32]byte{3}))
	recv := NewPrivateKeys(16, f.leafKeys[16])
	secret, err := recv.Clone().DecryptPath(f.tree, f.own, up, pathGroupContext, nil)
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
	if _, err := recv.DecryptPath(f.tree, f.own, &bad, pathGroupContext, nil); !errors.Is(err, ErrPathKey) {
		t.Fatalf("DecryptPath with a wrong path key: %v, want %v", err, ErrPathKey)
	}
	if len(recv.keys) != before {
		t.Fatalf("a refused path left %d keys, want %d", len(recv.keys), before)
	}
}

// BenchmarkDecryptPath is the worst case of processing a commit with path
// in a group of 1,024: the committer's sibling derives the key of every
// node of the path (compare -cpu 1,2).
func BenchmarkDecryptPath(b *testing.B) {
	f := newPathFixture(b, 1024, 1)
	_, up := f.updatePath(b, rand.NewChaCha8([32]byte{2}))
	recv := NewPrivateKeys(0, f.leafKeys[0])
	for b.Loop() {
		if _, err := recv.Clone().DecryptPath(f.tree, f.own, up, pathGroupContext, nil); err != nil {
			b.Fatal(err)
		}
	}
}
