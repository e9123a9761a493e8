// Package ratchettree implements the MLS ratchet tree (RFC 9420, §7): its
// nodes, resolutions, tree hashes and parent hashes, the operations that
// add, update and remove leaves, LeafNode validation, and TreeKEM (creating
// and processing UpdatePaths, §7.4-§7.6).
//
// A Tree is a handle on a persistent structure. Clone is O(1); the clone
// and the original then diverge by copying only the chunks they change, so
// the trees of many retained epochs share almost all their memory, and a
// commit touches O(log n) nodes. Tree hashes are cached per node and
// recomputed only along changed paths.
package ratchettree

import (
	"sync/atomic"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// NodeIndex and LeafIndex are the tree math index types.
type (
	NodeIndex = treemath.NodeIndex
	LeafIndex = treemath.LeafIndex
)

// entry is one node slot. The node data is immutable once the entry is
// shared; hash memoizes the tree hash of the subtree below the slot, which
// is safe because any change below a slot gives it a new entry.
type entry struct {
	owner  *editToken
	leaf   *wire.LeafNode
	parent *wire.ParentNode
	hash   atomic.Pointer[[]byte]
	// blank caches, for a blank parent, whether its whole subtree is
	// blank (subtreeBlank, subtreeNotBlank; 0 when not known yet). Like
	// hash, it is reset or the entry replaced when a node below changes.
	blank atomic.Uint32
}

const (
	subtreeBlank = 1 + iota
	subtreeNotBlank
)

// Tree is a ratchet tree. It is not safe for concurrent mutation; clones
// may be used from different goroutines.
type Tree struct {
	cs      suite.CipherSuite
	tok     *editToken
	nodes   nodeVec
	leaves  uint32 // number of leaf slots: 0 or a power of two
	members uint32 // non-blank leaves

	encKeys keyMap // encryption_key of every non-blank node -> node index
	sigKeys keyMap // signature_key of each leaf -> leaf index

	// Credential type bookkeeping for §7.3, kept as counts so that
	// validating a leaf costs O(1) in the group size.
	counts       *credCounts
	countsShared bool
}

type credCounts struct {
	inUse     map[wire.CredentialType]uint32 // members whose credential has the type
	supported map[wire.CredentialType]uint32 // members whose capabilities list the type
}

func (c *credCounts) clone() *credCounts {
	n := &credCounts{inUse: make(map[wire.CredentialType]uint32, len(c.inUse)), supported: make(map[wire.CredentialType]uint32, len(c.supported))}
	for k, v := range c.inUse {
		n.inUse[k] = v
	}
	for k, v := range c.supported {
		n.supported[k] = v
	}
	return n
}

// New returns an empty tree for the cipher suite.
func New(cs suite.CipherSuite) *Tree {
	tok := new(editToken)
	return &Tree{
		cs:     cs,
		tok:    tok,
		nodes:  buildVec(tok, nil),
		counts: &credCounts{inUse: map[wire.CredentialType]uint32{}, supported: map[wire.CredentialType]uint32{}},
	}
}

// Suite returns the tree's cipher suite.
func (t *Tree) Suite() suite.CipherSuite { return t.cs }

// Clone returns an independent copy of the tree in O(1).
func (t *Tree) Clone() *Tree {
	c := *t
	t.tok = new(editToken)
	c.tok = new(editToken)
	t.countsShared = true
	c.countsShared = true
	return &c
}

// Leaves returns the number of leaf slots (a power of two, or 0).
func (t *Tree) Leaves() uint32 { return t.leaves }

// Members returns the number of non-blank leaves.
func (t *Tree) Members() uint32 { return t.members }

// Width returns the number of node slots.
func (t *Tree) Width() uint32 { return treemath.Width(t.leaves) }

// Root returns the root node index. The tree must not be empty.
func (t *Tree) Root() NodeIndex { return treemath.Root(t.leaves) }

func (t *Tree) entry(x NodeIndex) *entry { return t.nodes.get(uint32(x)) }

// InRange reports whether x is a node of the tree.
func (t *Tree) InRange(x NodeIndex) bool { return uint32(x) < t.Width() }

// Leaf returns the leaf node at l, or nil if it is blank or out of range.
func (t *Tree) Leaf(l LeafIndex) *wire.LeafNode {
	if uint32(l) >= t.leaves {
		return nil
	}
	return t.entry(l.Node()).leaf
}

// ParentNode returns the parent node at x, or nil if it is blank, a leaf,
// or out of range.
func (t *Tree) ParentNode(x NodeIndex) *wire.ParentNode {
	if !t.InRange(x) || x.IsLeaf() {
		return nil
	}
	return t.entry(x).parent
}

// IsBlank reports whether node x is blank.
func (t *Tree) IsBlank(x NodeIndex) bool {
	e := t.entry(x)
	return e.leaf == nil && e.parent == nil
}

// EncryptionKey returns the public key of node x, or nil if it is blank.
func (t *Tree) EncryptionKey(x NodeIndex) []byte {
	e := t.entry(x)
	switch {
	case e.leaf != nil:
		return e.leaf.EncryptionKey
	case e.parent != nil:
		return e.parent.EncryptionKey
	}
	return nil
}

// FindSignatureKey returns the leaf holding the signature key.
func (t *Tree) FindSignatureKey(key []byte) (LeafIndex, bool) {
	l, ok := t.sigKeys.get(key)
	return LeafIndex(l), ok
}

// FindEncryptionKey returns the node (leaf or parent) holding the
// encryption key.
func (t *Tree) FindEncryptionKey(key []byte) (NodeIndex, bool) {
	x, ok := t.encKeys.get(key)
	return NodeIndex(x), ok
}

// CredentialTypeSupportedByAll reports whether every member lists ct in its
// capabilities, ignoring the member at except (pass a leaf index >= Leaves
// to ignore none).
func (t *Tree) CredentialTypeSupportedByAll(ct wire.CredentialType, except LeafIndex) bool {
	n := t.counts.supported[ct]
	members := t.members
	if l := t.Leaf(except); l != nil {
		members--
		if l.Capabilities.HasCredential(ct) {
			n--
		}
	}
	return n == members
}

// CredentialTypesInUse returns the credential types used by members other
// than the one at except.
func (t *Tree) CredentialTypesInUse(except LeafIndex) []wire.CredentialType {
	var out []wire.CredentialType
	ex := t.Leaf(except)
	for ct, n := range t.counts.inUse {
		if ex != nil && ex.Credential.Type == ct {
			n--
		}
		if n > 0 {
			out = append(out, ct)
		}
	}
	return out
}

// setEntry stores node data at x and invalidates the cached hashes of x and
// its ancestors.
func (t *Tree) setEntry(x NodeIndex, leaf *wire.LeafNode, parent *wire.ParentNode) {
	if !x.IsLeaf() {
		if old := t.entry(x).parent; old != nil {
			if v, ok := t.encKeys.get(old.EncryptionKey); ok && v == uint32(x) {
				t.encKeys.del(t.tok, old.EncryptionKey)
			}
		}
		if parent != nil {
			t.encKeys.put(t.tok, string(parent.EncryptionKey), uint32(x))
		}
	}
	t.nodes.set(t.tok, uint32(x), &entry{owner: t.tok, leaf: leaf, parent: parent})
	t.invalidateAbove(x)
}

// invalidateAbove drops the cached hashes of the ancestors of x.
func (t *Tree) invalidateAbove(x NodeIndex) {
	for _, p := range treemath.DirectPath(x, t.leaves) {
		e := t.entry(p)
		if e.owner == t.tok {
			e.hash.Store(nil)
			e.blank.Store(0)
			continue
		}
		t.nodes.set(t.tok, uint32(p), &entry{owner: t.tok, leaf: e.leaf, parent: e.parent})
	}
}

func (t *Tree) mutableCounts() *credCounts {
	if t.countsShared {
		t.counts = t.counts.clone()
		t.countsShared = false
	}
	return t.counts
}

// indexLeaf adds or removes (sign +1/-1) a leaf's keys and credential
// bookkeeping.
func (t *Tree) indexLeaf(l LeafIndex, leaf *wire.LeafNode, add bool) {
	c := t.mutableCounts()
	if add {
		t.encKeys.put(t.tok, string(leaf.EncryptionKey), uint32(l.Node()))
		t.sigKeys.put(t.tok, string(leaf.SignatureKey), uint32(l))
		t.members++
		c.inUse[leaf.Credential.Type]++
		for _, ct := range dedup(leaf.Capabilities.Credentials) {
			c.supported[ct]++
		}
		return
	}
	if v, ok := t.encKeys.get(leaf.EncryptionKey); ok && v == uint32(l.Node()) {
		t.encKeys.del(t.tok, leaf.EncryptionKey)
	}
	if v, ok := t.sigKeys.get(leaf.SignatureKey); ok && v == uint32(l) {
		t.sigKeys.del(t.tok, leaf.SignatureKey)
	}
	t.members--
	c.inUse[leaf.Credential.Type]--
	if c.inUse[leaf.Credential.Type] == 0 {
		delete(c.inUse, leaf.Credential.Type)
	}
	for _, ct := range dedup(leaf.Capabilities.Credentials) {
		c.supported[ct]--
		if c.supported[ct] == 0 {
			delete(c.supported, ct)
		}
	}
}

func dedup(v []wire.CredentialType) []wire.CredentialType {
	for i := 1; i < len(v); i++ {
		for j := 0; j < i; j++ {
			if v[i] == v[j] {
				out := make([]wire.CredentialType, 0, len(v))
				seen := map[wire.CredentialType]bool{}
				for _, x := range v {
					if !seen[x] {
						seen[x] = true
						out = append(out, x)
					}
				}
				return out
			}
		}
	}
	return v
}

// SetLeaf replaces the leaf at l (which must be in range) with leaf, or
// blanks it when leaf is nil. Ancestors are not changed.
func (t *Tree) SetLeaf(l LeafIndex, leaf *wire.LeafNode) {
	if old := t.Leaf(l); old != nil {
		t.indexLeaf(l, old, false)
	}
	if leaf != nil {
		t.indexLeaf(l, leaf, true)
	}
	t.setEntry(l.Node(), leaf, nil)
}

// SetParent replaces the parent node at x, or blanks it when p is nil.
func (t *Tree) SetParent(x NodeIndex, p *wire.ParentNode) { t.setEntry(x, nil, p) }

// BlankPath blanks every node on the direct path of leaf l.
func (t *Tree) BlankPath(l LeafIndex) {
	for _, p := range treemath.DirectPath(l.Node(), t.leaves) {
		if !t.IsBlank(p) {
			t.setEntry(p, nil, nil)
		}
	}
}

// resize rebuilds the node vector for a new number of leaves, keeping the
// nodes of the common prefix and filling new slots with blanks.
func (t *Tree) resize(leaves uint32) {
	old := t.nodes.all()
	w := treemath.Width(leaves)
	vals := make([]*entry, w)
	for i := range vals {
		if i < len(old) && i < int(w) {
			vals[i] = old[i]
		} else {
			vals[i] = &entry{owner: t.tok}
		}
	}
	t.tok = new(editToken) // the old chunks may still be shared
	t.nodes = buildVec(t.tok, vals)
	t.leaves = leaves
	// The root and the nodes whose subtrees changed shape get fresh entries.
	if leaves > 0 {
		t.invalidateAbove(NodeIndex(w - 1))
		root := treemath.Root(leaves)
		e := t.entry(root)
		t.nodes.set(t.tok, uint32(root), &entry{owner: t.tok, leaf: e.leaf, parent: e.parent})
	}
}

// Extend doubles the number of leaf slots (§7.7).
func (t *Tree) Extend() {
	if t.leaves == 0 {
		t.resize(1)
		return
	}
	t.resize(2 * t.leaves)
}

// Truncate halves the tree while its right half is entirely blank (§7.7).
func (t *Tree) Truncate() {
	for t.leaves > 1 {
		half := t.leaves / 2
		blank := true
		for x := treemath.Width(half) + 1; x < t.Width(); x++ {
			if !t.IsBlank(NodeIndex(x)) {
				blank = false
				break
			}
		}
		if !blank {
			return
		}
		t.resize(half)
	}
}

// AddLeaf puts leaf in the leftmost blank leaf slot, extending the tree if
// there is none, and records it as unmerged at every non-blank ancestor
// (§12.1.1). It returns the new leaf's index.
func (t *Tree) AddLeaf(leaf *wire.LeafNode) LeafIndex {
	l, ok := t.firstBlankLeaf()
	if !ok {
		l = LeafIndex(t.leaves)
		t.Extend()
	}
	t.SetLeaf(l, leaf)
	for _, p := range treemath.DirectPath(l.Node(), t.leaves) {
		if pn := t.ParentNode(p); pn != nil {
			np := *pn
			np.UnmergedLeaves = append(append([]uint32(nil), pn.UnmergedLeaves...), uint32(l))
			t.SetParent(p, &np)
		}
	}
	return l
}

// NextFreeLeaf returns the leaf an Add (or an external joiner) would take:
// the leftmost blank leaf, or the first leaf of the extension if there is
// none.
func (t *Tree) NextFreeLeaf() LeafIndex {
	if l, ok := t.firstBlankLeaf(); ok {
		return l
	}
	return LeafIndex(t.leaves)
}

func (t *Tree) firstBlankLeaf() (LeafIndex, bool) {
	if t.members == t.leaves {
		return 0, false
	}
	for l := LeafIndex(0); uint32(l) < t.leaves; l++ {
		if t.Leaf(l) == nil {
			return l, true
		}
	}
	return 0, false
}

// RemoveLeaf blanks leaf l and its direct path and truncates the tree
// (§12.1.3).
func (t *Tree) RemoveLeaf(l LeafIndex) {
	t.SetLeaf(l, nil)
	t.BlankPath(l)
}

// UpdateLeaf replaces the leaf at l and blanks its direct path (§12.1.2).
func (t *Tree) UpdateLeaf(l LeafIndex, leaf *wire.LeafNode) {
	t.SetLeaf(l, leaf)
	t.BlankPath(l)
}

// Resolution returns the resolution of node x (§4.1.1): x itself and its
// unmerged leaves if x is not blank, otherwise the resolutions of its
// children. Leaves in exclude are left out.
func (t *Tree) Resolution(x NodeIndex, exclude map[LeafIndex]bool) []NodeIndex {
	return t.resolution(x, exclude, nil)
}

func (t *Tree) resolution(x NodeIndex, exclude map[LeafIndex]bool, out []NodeIndex) []NodeIndex {
	e := t.entry(x)
	if x.IsLeaf() {
		if e.leaf != nil && !exclude[x.Leaf()] {
			out = append(out, x)
		}
		return out
	}
	if e.parent != nil {
		out = append(out, x)
		for _, u := range e.parent.UnmergedLeaves {
			if !exclude[LeafIndex(u)] {
				out = append(out, LeafIndex(u).Node())
			}
		}
		return out
	}
	if t.resolutionEmpty(x) {
		return out
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	out = t.resolution(l, exclude, out)
	return t.resolution(r, exclude, out)
}

// resolutionEmpty reports whether the resolution of x is empty, without
// building it. The answer for a blank parent is cached in its entry: the
// blank slots to the right of the last member (up to half the tree) are
// then walked once, not by every resolution that reaches them.
func (t *Tree) resolutionEmpty(x NodeIndex) bool {
	e := t.entry(x)
	if e.leaf != nil || e.parent != nil {
		return false
	}
	if x.IsLeaf() {
		return true
	}
	switch e.blank.Load() {
	case subtreeBlank:
		return true
	case subtreeNotBlank:
		return false
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	empty := t.resolutionEmpty(l) && t.resolutionEmpty(r)
	if empty {
		e.blank.Store(subtreeBlank)
	} else {
		e.blank.Store(subtreeNotBlank)
	}
	return empty
}

// FilteredDirectPath returns the filtered direct path of leaf l (§4.1.2)
// and, for each of its nodes, the child on l's copath.
func (t *Tree) FilteredDirectPath(l LeafIndex) (path, copath []NodeIndex) {
	x := l.Node()
	for _, p := range treemath.DirectPath(x, t.leaves) {
		s, _ := treemath.Sibling(x, t.leaves)
		if !t.resolutionEmpty(s) {
			path = append(path, p)
			copath = append(copath, s)
		}
		x = p
	}
	return path, copath
}

// LeafIndices returns the indices of the non-blank leaves.
func (t *Tree) LeafIndices() []LeafIndex {
	out := make([]LeafIndex, 0, t.members)
	for l := LeafIndex(0); uint32(l) < t.leaves; l++ {
		if t.Leaf(l) != nil {
			out = append(out, l)
		}
	}
	return out
}
