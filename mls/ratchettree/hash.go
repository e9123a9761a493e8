package ratchettree

import (
	"hash"
	"runtime"
	"sync"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// TreeHash returns the tree hash of the whole tree (§7.8). When several
// large subtrees have no cached hash (a tree just received or restored),
// they are hashed on all cores.
func (t *Tree) TreeHash() []byte {
	if t.leaves == 0 {
		return nil
	}
	root := t.Root()
	if t.entry(root).hash.Load() == nil {
		t.hashSubtrees()
	}
	return t.NodeHash(root)
}

// parallelHashLeaves is the smallest subtree, in leaf slots, hashed as one
// task by hashSubtrees: with X-Wing keys, 64 leaves and their parents are
// about 150 KB to hash, far more than a goroutine costs.
const parallelHashLeaves = 64

// hashSubtrees computes the missing hashes of the subtrees at the level
// where the tree splits into about four subtrees per core, in parallel.
func (t *Tree) hashSubtrees() {
	procs := runtime.GOMAXPROCS(0)
	if procs < 2 {
		return
	}
	size := t.leaves // leaf slots per subtree
	for size/2 >= parallelHashLeaves && t.leaves/size < uint32(4*procs) {
		size /= 2
	}
	if size == t.leaves {
		return
	}
	var todo []NodeIndex
	for first := uint32(0); first < t.leaves; first += size {
		x := treemath.Root(size) + NodeIndex(2*first) // the subtree's root
		if t.entry(x).hash.Load() == nil {
			todo = append(todo, x)
		}
	}
	if len(todo) < 2 {
		return
	}
	forEach(len(todo), func(i int) error {
		t.NodeHash(todo[i])
		return nil
	})
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

// hashBufs holds buffers in which nodes are encoded to be hashed: hashing
// a tree encodes every node, and an X-Wing node is over 1 KB. The nodes
// are public.
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// hashEncoded returns the suite's hash of what f encodes.
func (t *Tree) hashEncoded(f func(b *cryptobyte.Builder)) []byte {
	buf := hashBufs.Get().(*[]byte)
	b := cryptobyte.NewBuilder((*buf)[:0])
	f(b)
	enc := b.BytesOrPanic()
	h := t.cs.Hash(enc)
	if cap(enc) <= 64<<10 {
		*buf = enc[:0]
		hashBufs.Put(buf)
	}
	return h
}

func (t *Tree) leafHash(l LeafIndex, leaf *wire.LeafNode) []byte {
	return t.hashEncoded(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(wire.NodeTypeLeaf))
		b.AddUint32(uint32(l))
		codec.AddOptional(b, leaf != nil, func(b *cryptobyte.Builder) { leaf.MarshalMLS(b) })
	})
}

func (t *Tree) parentHashInputHash(p *wire.ParentNode, left, right []byte) []byte {
	return t.hashEncoded(func(b *cryptobyte.Builder) {
		b.AddUint8(uint8(wire.NodeTypeParent))
		codec.AddOptional(b, p != nil, func(b *cryptobyte.Builder) { p.MarshalMLS(b) })
		codec.AddOpaque(b, left)
		codec.AddOpaque(b, right)
	})
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
	h := t.cs.NewHash()
	writeOpaque(h, p.EncryptionKey)
	writeOpaque(h, p.ParentHash)
	writeOpaque(h, t.originalTreeHash(s, p.UnmergedLeaves))
	return h.Sum(nil)
}

// parentHasher returns parentHash(p, s) as a function of s, for checking
// both children of p: the part of ParentHashInput that does not depend on
// s (p's key and parent_hash) is hashed once.
func (t *Tree) parentHasher(p *wire.ParentNode) func(s NodeIndex) []byte {
	prefix := t.cs.NewHash()
	writeOpaque(prefix, p.EncryptionKey)
	writeOpaque(prefix, p.ParentHash)
	cloner, _ := prefix.(hash.Cloner)
	return func(s NodeIndex) []byte {
		if cloner == nil {
			return t.parentHash(p, s)
		}
		h, err := cloner.Clone()
		if err != nil {
			return t.parentHash(p, s)
		}
		writeOpaque(h, t.originalTreeHash(s, p.UnmergedLeaves))
		return h.Sum(nil)
	}
}

// writeOpaque writes data to h as an opaque<V>.
func writeOpaque(h hash.Hash, data []byte) {
	var hdr [4]byte
	b := cryptobyte.NewBuilder(hdr[:0])
	codec.AddVarint(b, uint64(len(data)))
	h.Write(b.BytesOrPanic())
	h.Write(data)
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
