package ratchettree

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// TreeHash returns the tree hash of the whole tree (§7.8).
func (t *Tree) TreeHash() []byte {
	if t.leaves == 0 {
		return nil
	}
	return t.NodeHash(t.Root())
}

// NodeHash returns the tree hash of the subtree rooted at x.
func (t *Tree) NodeHash(x NodeIndex) []byte {
	e := t.entry(x)
	if h := e.hash.Load(); h != nil {
		return *h
	}
	var h []byte
	if x.IsLeaf() {
		h = t.leafHash(x.Leaf(), e.leaf)
	} else {
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		h = t.parentHashInputHash(e.parent, t.NodeHash(l), t.NodeHash(r))
	}
	e.hash.Store(&h)
	return h
}

func (t *Tree) leafHash(l LeafIndex, leaf *wire.LeafNode) []byte {
	var b cryptobyte.Builder
	b.AddUint8(uint8(wire.NodeTypeLeaf))
	b.AddUint32(uint32(l))
	codec.AddOptional(&b, leaf != nil, func(b *cryptobyte.Builder) { leaf.MarshalMLS(b) })
	return t.cs.Hash(b.BytesOrPanic())
}

func (t *Tree) parentHashInputHash(p *wire.ParentNode, left, right []byte) []byte {
	var b cryptobyte.Builder
	b.AddUint8(uint8(wire.NodeTypeParent))
	codec.AddOptional(&b, p != nil, func(b *cryptobyte.Builder) { p.MarshalMLS(b) })
	codec.AddOpaque(&b, left)
	codec.AddOpaque(&b, right)
	return t.cs.Hash(b.BytesOrPanic())
}

// originalTreeHash returns the tree hash of the subtree at x with the leaves
// in removed blanked and dropped from every unmerged_leaves list (§7.9).
// Subtrees holding none of them use the cached hashes.
func (t *Tree) originalTreeHash(x NodeIndex, removed []uint32) []byte {
	lo, hi := subtreeLeaves(x)
	var inside []uint32
	for _, u := range removed {
		if u >= lo && u < hi {
			inside = append(inside, u)
		}
	}
	if len(inside) == 0 {
		return t.NodeHash(x)
	}
	e := t.entry(x)
	if x.IsLeaf() {
		return t.leafHash(x.Leaf(), nil) // x is one of the removed leaves
	}
	p := e.parent
	if p != nil {
		np := *p
		np.UnmergedLeaves = nil
		for _, u := range p.UnmergedLeaves {
			if !containsU32(inside, u) {
				np.UnmergedLeaves = append(np.UnmergedLeaves, u)
			}
		}
		p = &np
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return t.parentHashInputHash(p, t.originalTreeHash(l, inside), t.originalTreeHash(r, inside))
}

// subtreeLeaves returns the range [lo, hi) of leaf indices under x.
func subtreeLeaves(x NodeIndex) (lo, hi uint32) {
	k := x.Level()
	first := uint32(x) - (uint32(1)<<k - 1)
	return first / 2, first/2 + uint32(1)<<k
}

func containsU32(v []uint32, x uint32) bool {
	for _, y := range v {
		if y == x {
			return true
		}
	}
	return false
}

// parentHash computes the parent hash of parent node p (§7.9): the hash of
// ParentHashInput with p's key, p's parent_hash, and the original tree hash
// of p's child s, the copath child.
func (t *Tree) parentHash(p *wire.ParentNode, s NodeIndex) []byte {
	var b cryptobyte.Builder
	codec.AddOpaque(&b, p.EncryptionKey)
	codec.AddOpaque(&b, p.ParentHash)
	codec.AddOpaque(&b, t.originalTreeHash(s, p.UnmergedLeaves))
	return t.cs.Hash(b.BytesOrPanic())
}

// ParentHashOf returns the parent hash of the non-blank parent node at x
// with copath child s.
func (t *Tree) ParentHashOf(x, s NodeIndex) []byte {
	p := t.ParentNode(x)
	if p == nil {
		return nil
	}
	return t.parentHash(p, s)
}
