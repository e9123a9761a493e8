package ratchettree

import (
	"fmt"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// FromWire builds a tree from its ratchet_tree encoding (§12.4.3.3),
// checking its structure and the uniqueness of leaf keys. It does not
// verify signatures or parent hashes: see Verify.
func FromWire(cs suite.CipherSuite, rt wire.RatchetTree) (*Tree, error) {
	if len(rt) == 0 || len(rt)%2 == 0 {
		return nil, fmt.Errorf("%w: %d nodes", ErrMalformedTree, len(rt))
	}
	if rt[len(rt)-1] == nil {
		return nil, fmt.Errorf("%w: last node is blank", ErrMalformedTree)
	}
	leaves := uint32(1)
	for treemath.Width(leaves) < uint32(len(rt)) {
		leaves *= 2
	}
	t := New(cs)
	vals := make([]*entry, treemath.Width(leaves))
	for i := range vals {
		e := &entry{owner: t.tok}
		if i < len(rt) && rt[i] != nil {
			n := rt[i]
			switch {
			case i%2 == 0 && n.Leaf != nil:
				e.leaf = n.Leaf
			case i%2 == 1 && n.Parent != nil:
				e.parent = n.Parent
			default:
				return nil, fmt.Errorf("%w: node %d has the wrong type", ErrMalformedTree, i)
			}
		}
		vals[i] = e
	}
	t.nodes = buildVec(t.tok, vals)
	t.leaves = leaves
	for x := NodeIndex(1); uint32(x) < t.Width(); x += 2 {
		if p := t.ParentNode(x); p != nil {
			if y, dup := t.FindEncryptionKey(p.EncryptionKey); dup {
				return nil, fmt.Errorf("%w: encryption key of nodes %d and %d", ErrDuplicateKey, y, x)
			}
			t.encKeys.put(t.tok, string(p.EncryptionKey), uint32(x))
		}
	}
	for l := LeafIndex(0); uint32(l) < leaves; l++ {
		leaf := t.Leaf(l)
		if leaf == nil {
			continue
		}
		if _, dup := t.FindEncryptionKey(leaf.EncryptionKey); dup {
			return nil, fmt.Errorf("%w: encryption key of leaf %d", ErrDuplicateKey, l)
		}
		if _, dup := t.FindSignatureKey(leaf.SignatureKey); dup {
			return nil, fmt.Errorf("%w: signature key of leaf %d", ErrDuplicateKey, l)
		}
		t.indexLeaf(l, leaf, true)
	}
	return t, nil
}

// Wire returns the ratchet_tree encoding of the tree, without trailing
// blank nodes.
func (t *Tree) Wire() wire.RatchetTree {
	all := t.nodes.all()
	end := len(all)
	for end > 0 && all[end-1].leaf == nil && all[end-1].parent == nil {
		end--
	}
	rt := make(wire.RatchetTree, end)
	for i := 0; i < end; i++ {
		switch e := all[i]; {
		case e.leaf != nil:
			rt[i] = &wire.Node{Leaf: e.leaf}
		case e.parent != nil:
			rt[i] = &wire.Node{Parent: e.parent}
		}
	}
	return rt
}
