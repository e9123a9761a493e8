package ratchettree

import "hash/maphash"

// This file holds the two persistent structures behind Tree: a vector of
// node entries and a hash map of leaf keys. Both copy on write: a Tree
// handle owns the chunks it created (they carry its edit token) and
// mutates them in place, and copies any chunk it shares with another
// handle before changing it. Clone is O(1), and trees of successive epochs
// share every chunk that did not change between them.

// editToken identifies the handle that may mutate a chunk in place.
type editToken struct{ _ byte }

const (
	vecBits  = 5
	vecWidth = 1 << vecBits
	vecMask  = vecWidth - 1
)

type vecNode struct {
	owner *editToken
	kids  []*vecNode // inner chunks
	vals  []*entry   // bottom chunks
}

// nodeVec is a persistent vector of *entry.
type nodeVec struct {
	root  *vecNode
	size  uint32
	shift uint // depth of the trie times vecBits
}

func (v *nodeVec) get(i uint32) *entry {
	n := v.root
	for s := v.shift; s > 0; s -= vecBits {
		n = n.kids[(i>>s)&vecMask]
	}
	return n.vals[i&vecMask]
}

// set stores e at i, copying chunks not owned by tok.
func (v *nodeVec) set(tok *editToken, i uint32, e *entry) {
	v.root = setIn(tok, v.root, v.shift, i, e)
}

func setIn(tok *editToken, n *vecNode, shift uint, i uint32, e *entry) *vecNode {
	if n.owner != tok {
		c := &vecNode{owner: tok}
		if n.kids != nil {
			c.kids = append(make([]*vecNode, 0, vecWidth), n.kids...)
		} else {
			c.vals = append(make([]*entry, 0, vecWidth), n.vals...)
		}
		n = c
	}
	if shift == 0 {
		n.vals[i&vecMask] = e
		return n
	}
	k := (i >> shift) & vecMask
	n.kids[k] = setIn(tok, n.kids[k], shift-vecBits, i, e)
	return n
}

// buildVec builds a vector holding vals, owned by tok.
func buildVec(tok *editToken, vals []*entry) nodeVec {
	var level []*vecNode
	for i := 0; i < len(vals) || i == 0; i += vecWidth {
		n := &vecNode{owner: tok, vals: make([]*entry, vecWidth)}
		copy(n.vals, vals[i:min(i+vecWidth, len(vals))])
		level = append(level, n)
	}
	shift := uint(0)
	for len(level) > 1 {
		var up []*vecNode
		for i := 0; i < len(level); i += vecWidth {
			n := &vecNode{owner: tok, kids: make([]*vecNode, vecWidth)}
			copy(n.kids, level[i:min(i+vecWidth, len(level))])
			up = append(up, n)
		}
		level = up
		shift += vecBits
	}
	return nodeVec{root: level[0], size: uint32(len(vals)), shift: shift}
}

// all returns the entries in order.
func (v *nodeVec) all() []*entry {
	out := make([]*entry, 0, v.size)
	var walk func(n *vecNode, shift uint)
	walk = func(n *vecNode, shift uint) {
		if shift == 0 {
			for _, e := range n.vals {
				if uint32(len(out)) == v.size {
					return
				}
				out = append(out, e)
			}
			return
		}
		for _, k := range n.kids {
			if uint32(len(out)) == v.size || k == nil {
				return
			}
			walk(k, shift-vecBits)
		}
	}
	if v.root != nil {
		walk(v.root, v.shift)
	}
	return out
}

// keyMap is a persistent hash array mapped trie from public keys to leaf
// indices.
type keyMap struct {
	root *hamtNode
	size int
}

type hamtNode struct {
	owner  *editToken
	bitmap uint32
	slots  []hamtSlot
}

type hamtSlot struct {
	key   string
	val   uint32
	child *hamtNode // set for a sub-trie; key is empty then
	extra []hamtSlot
	// extra holds further keys with the same full hash (collisions at the
	// bottom of the trie).
}

var hamtSeed = maphash.MakeSeed()

const hamtLevels = 6 // 6 levels of 5 bits use 30 bits of the hash

func hamtHash(key string) uint32 { return uint32(maphash.String(hamtSeed, key)) }

// hamtHashBytes is hamtHash of string(key), without copying key.
func hamtHashBytes(key []byte) uint32 { return uint32(maphash.Bytes(hamtSeed, key)) }

// get looks key up. It takes the key as bytes and does not copy it: an
// X-Wing key is 1,216 bytes, and a joiner looks up every key of the tree.
func (m *keyMap) get(key []byte) (uint32, bool) {
	n := m.root
	h := hamtHashBytes(key)
	for level := 0; n != nil; level++ {
		bit := uint32(1) << ((h >> (5 * level)) & 31)
		if n.bitmap&bit == 0 {
			return 0, false
		}
		s := &n.slots[popcount(n.bitmap&(bit-1))]
		if s.child != nil {
			n = s.child
			continue
		}
		if s.key == string(key) {
			return s.val, true
		}
		for _, x := range s.extra {
			if x.key == string(key) {
				return x.val, true
			}
		}
		return 0, false
	}
	return 0, false
}

func popcount(x uint32) int {
	n := 0
	for x != 0 {
		x &= x - 1
		n++
	}
	return n
}

func (n *hamtNode) own(tok *editToken) *hamtNode {
	if n.owner == tok {
		return n
	}
	return &hamtNode{owner: tok, bitmap: n.bitmap, slots: append([]hamtSlot(nil), n.slots...)}
}

// put maps key to val, replacing any previous value.
func (m *keyMap) put(tok *editToken, key string, val uint32) {
	if m.root == nil {
		m.root = &hamtNode{owner: tok}
	}
	var added bool
	m.root, added = hamtPut(tok, m.root, 0, hamtHash(key), key, val)
	if added {
		m.size++
	}
}

func hamtPut(tok *editToken, n *hamtNode, level int, h uint32, key string, val uint32) (*hamtNode, bool) {
	n = n.own(tok)
	bit := uint32(1) << ((h >> (5 * level)) & 31)
	idx := popcount(n.bitmap & (bit - 1))
	if n.bitmap&bit == 0 {
		n.slots = append(n.slots, hamtSlot{})
		copy(n.slots[idx+1:], n.slots[idx:])
		n.slots[idx] = hamtSlot{key: key, val: val}
		n.bitmap |= bit
		return n, true
	}
	s := n.slots[idx]
	if s.child != nil {
		child, added := hamtPut(tok, s.child, level+1, h, key, val)
		n.slots[idx] = hamtSlot{child: child}
		return n, added
	}
	if s.key == key {
		n.slots[idx].val = val
		return n, false
	}
	for i, x := range s.extra {
		if x.key == key {
			extra := append([]hamtSlot(nil), s.extra...)
			extra[i].val = val
			n.slots[idx].extra = extra
			return n, false
		}
	}
	if level+1 >= hamtLevels || hamtHash(s.key) == h {
		// Out of hash bits (or a full-hash collision): chain.
		n.slots[idx].extra = append(append([]hamtSlot(nil), s.extra...), hamtSlot{key: key, val: val})
		return n, true
	}
	// Push the existing key (and its chain) down one level.
	child := &hamtNode{owner: tok}
	sh := hamtHash(s.key)
	child.bitmap = uint32(1) << ((sh >> (5 * (level + 1))) & 31)
	child.slots = []hamtSlot{s}
	child, added := hamtPut(tok, child, level+1, h, key, val)
	n.slots[idx] = hamtSlot{child: child}
	return n, added
}

// del removes key if present.
func (m *keyMap) del(tok *editToken, key []byte) {
	if m.root == nil {
		return
	}
	var removed bool
	m.root, removed = hamtDel(tok, m.root, 0, hamtHashBytes(key), key)
	if removed {
		m.size--
	}
}

func hamtDel(tok *editToken, n *hamtNode, level int, h uint32, key []byte) (*hamtNode, bool) {
	bit := uint32(1) << ((h >> (5 * level)) & 31)
	if n.bitmap&bit == 0 {
		return n, false
	}
	idx := popcount(n.bitmap & (bit - 1))
	s := n.slots[idx]
	if s.child != nil {
		child, removed := hamtDel(tok, s.child, level+1, h, key)
		if !removed {
			return n, false
		}
		n = n.own(tok)
		if child.bitmap == 0 {
			n.slots = append(n.slots[:idx], n.slots[idx+1:]...)
			n.bitmap &^= bit
		} else {
			n.slots[idx] = hamtSlot{child: child}
		}
		return n, true
	}
	if s.key == string(key) {
		n = n.own(tok)
		if len(s.extra) > 0 {
			n.slots[idx] = hamtSlot{key: s.extra[0].key, val: s.extra[0].val, extra: append([]hamtSlot(nil), s.extra[1:]...)}
		} else {
			n.slots = append(n.slots[:idx], n.slots[idx+1:]...)
			n.bitmap &^= bit
		}
		return n, true
	}
	for i, x := range s.extra {
		if x.key == string(key) {
			n = n.own(tok)
			extra := append(append([]hamtSlot(nil), s.extra[:i]...), s.extra[i+1:]...)
			n.slots[idx].extra = extra
			return n, true
		}
	}
	return n, false
}
