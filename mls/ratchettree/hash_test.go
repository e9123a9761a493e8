package ratchettree

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// committedTree returns a tree of n members in which the members at
// committers have applied an UpdatePath in turn, so that its parents are
// set and parent-hash valid.
func committedTree(tb testing.TB, cs suite.CipherSuite, n int, committers ...LeafIndex) *Tree {
	tb.Helper()
	rng := rand.NewChaCha8([32]byte{4})
	tr := New(cs)
	signers := make([]*suite.SignaturePrivateKey, n)
	for i := range n {
		k, err := cs.GenerateHPKEKey(rng)
		if err != nil {
			tb.Fatal(err)
		}
		if signers[i], err = cs.GenerateSignatureKey(rng); err != nil {
			tb.Fatal(err)
		}
		tr.AddLeaf(&wire.LeafNode{EncryptionKey: k.PublicKey(), SignatureKey: signers[i].PublicKey(),
			Credential: wire.Credential{Type: wire.CredentialBasic, Identity: []byte{byte(i), byte(i >> 8)}}, Source: wire.LeafNodeSourceKeyPackage})
	}
	for _, l := range committers {
		if _, err := tr.ApplyOwnPath(l, *tr.Leaf(l), signers[l], []byte("group"), rng); err != nil {
			tb.Fatal(err)
		}
	}
	return tr
}

// TestTreeHashesOnAllCoresMatchOneCore: a tree received whole has its
// subtrees hashed and its parents' hashes checked in parallel; the tree
// hash and the verdicts (including which parent is reported) must be
// those of one core, and of the tree that computed its hashes as it grew.
func TestTreeHashesOnAllCoresMatchOneCore(t *testing.T) {
	cs := suite.CipherSuite(1)
	tr := committedTree(t, cs, 300, 0, 77, 150, 299, 200)
	want := tr.TreeHash()
	rt := tr.Wire()
	// A copy in which one parent's parent_hash is wrong: that parent, and
	// its own parent, are no longer parent-hash valid; the lowest is
	// reported.
	bad := append(wire.RatchetTree(nil), rt...)
	for x := NodeIndex(1); int(x) < len(bad); x += 2 {
		if bad[x] != nil && x.Level() == 2 {
			p := *bad[x].Parent
			p.ParentHash = bytes.Repeat([]byte{7}, cs.Nh())
			bad[x] = &wire.Node{Parent: &p}
			break
		}
	}
	var oneCore string
	for _, procs := range []int{1, 2, 4} {
		func() {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			got, err := FromWire(cs, rt)
			if err != nil {
				t.Fatal(err)
			}
			if h := got.TreeHash(); !bytes.Equal(h, want) {
				t.Errorf("%d cores: tree hash %x, want %x", procs, h, want)
			}
			if err := got.VerifyParentHashes(); err != nil {
				t.Errorf("%d cores: %v", procs, err)
			}
			b, err := FromWire(cs, bad)
			if err != nil {
				t.Fatal(err)
			}
			err = b.VerifyParentHashes()
			if !errors.Is(err, ErrParentHash) {
				t.Fatalf("%d cores, a parent_hash changed: %v, want ErrParentHash", procs, err)
			}
			if oneCore == "" {
				oneCore = err.Error()
			} else if err.Error() != oneCore {
				t.Errorf("%d cores: %v, one core: %v", procs, err, oneCore)
			}
		}()
	}
}
