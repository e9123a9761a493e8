// Package treemath implements the arithmetic of the array representation of
// MLS ratchet trees (RFC 9420, §4.2 and Appendix C).
//
// Leaves sit at even node indices (leaf i at node 2i) and parent nodes at odd
// indices. MLS trees are always complete: the number of leaves is a power of
// two, so every node but the root has a parent inside the tree.
package treemath

import "math/bits"

// NodeIndex is the index of a node in the array representation of a tree.
type NodeIndex uint32

// LeafIndex is the index of a leaf, counting leaves only.
type LeafIndex uint32

// Node returns the node index of the leaf.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * l) }

// IsLeaf reports whether x is a leaf node.
func (x NodeIndex) IsLeaf() bool { return x&1 == 0 }

// Leaf returns the leaf index of x; x must be a leaf node.
func (x NodeIndex) Leaf() LeafIndex { return LeafIndex(x >> 1) }

// Level returns the level of x in the tree: 0 for leaves, 1 for their
// parents, and so on.
func (x NodeIndex) Level() uint { return uint(bits.TrailingZeros32(^uint32(x))) }

// Width returns the number of nodes in a tree with n leaves.
func Width(n uint32) uint32 {
	if n == 0 {
		return 0
	}
	return 2*(n-1) + 1
}

// Root returns the root of a tree with n leaves (n > 0).
func Root(n uint32) NodeIndex {
	w := Width(n)
	return NodeIndex(uint32(1)<<log2(w) - 1)
}

// log2 is the exponent of the largest power of two not above x (0 for 0).
func log2(x uint32) uint {
	if x == 0 {
		return 0
	}
	return uint(bits.Len32(x) - 1)
}

// Left returns the left child of x. ok is false for leaves.
func Left(x NodeIndex) (child NodeIndex, ok bool) {
	k := x.Level()
	if k == 0 {
		return 0, false
	}
	return x ^ (1 << (k - 1)), true
}

// Right returns the right child of x. ok is false for leaves.
func Right(x NodeIndex) (child NodeIndex, ok bool) {
	k := x.Level()
	if k == 0 {
		return 0, false
	}
	return x ^ (3 << (k - 1)), true
}

// Parent returns the parent of x in a tree with n leaves. ok is false for
// the root and for nodes outside the tree.
func Parent(x NodeIndex, n uint32) (parent NodeIndex, ok bool) {
	if uint32(x) >= Width(n) || x == Root(n) {
		return 0, false
	}
	k := x.Level()
	b := (x >> (k + 1)) & 1
	return (x | (1 << k)) ^ (b << (k + 1)), true
}

// Sibling returns the other child of x's parent. ok is false for the root
// and for nodes outside the tree.
func Sibling(x NodeIndex, n uint32) (sibling NodeIndex, ok bool) {
	p, ok := Parent(x, n)
	if !ok {
		return 0, false
	}
	if x < p {
		s, _ := Right(p)
		return s, true
	}
	s, _ := Left(p)
	return s, true
}

// DirectPath returns the direct path of x, from its parent up to the root.
// It is empty for the root.
func DirectPath(x NodeIndex, n uint32) []NodeIndex {
	r := Root(n)
	if uint32(x) >= Width(n) || x == r {
		return nil
	}
	d := make([]NodeIndex, 0, r.Level()-x.Level())
	for x != r {
		x, _ = Parent(x, n)
		d = append(d, x)
	}
	return d
}

// Copath returns the copath of x: the siblings of x and of each node of its
// direct path except the root, ordered from the leaf up.
func Copath(x NodeIndex, n uint32) []NodeIndex {
	r := Root(n)
	if uint32(x) >= Width(n) || x == r {
		return nil
	}
	c := make([]NodeIndex, 0, r.Level()-x.Level())
	for x != r {
		s, _ := Sibling(x, n)
		c = append(c, s)
		x, _ = Parent(x, n)
	}
	return c
}

// CommonAncestor returns the lowest node whose subtree holds both x and y.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	lx, ly := x.Level()+1, y.Level()+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	xn, yn := x, y
	k := uint(0)
	for xn != yn {
		xn, yn = xn>>1, yn>>1
		k++
	}
	return (xn << k) + (1 << (k - 1)) - 1
}

// IsAncestor reports whether a is x or an ancestor of x.
func IsAncestor(a, x NodeIndex) bool {
	k := a.Level() + 1
	return a>>k == x>>k && (x.Level() <= a.Level())
}
