package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// ParentNode is an interior node of the ratchet tree (§7.1).
type ParentNode struct {
	EncryptionKey  []byte // HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []uint32 // leaf indices, ascending
}

// MarshalMLS encodes ParentNode.
func (p *ParentNode) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.EncryptionKey)
	codec.AddOpaque(b, p.ParentHash)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, l := range p.UnmergedLeaves {
			b.AddUint32(l)
		}
	})
}

// UnmarshalMLS decodes ParentNode.
func (p *ParentNode) UnmarshalMLS(s *cryptobyte.String) bool {
	*p = ParentNode{}
	var body cryptobyte.String
	if !codec.ReadOpaque(s, &p.EncryptionKey) ||
		!codec.ReadOpaque(s, &p.ParentHash) ||
		!codec.ReadVector(s, &body) || len(body)%4 != 0 {
		return false
	}
	if len(body) > 0 {
		p.UnmergedLeaves = make([]uint32, 0, len(body)/4)
	}
	for !body.Empty() {
		var l uint32
		body.ReadUint32(&l)
		p.UnmergedLeaves = append(p.UnmergedLeaves, l)
	}
	return true
}

// Node is one non-blank node of a serialized ratchet tree: exactly one of
// Leaf and Parent is set (§12.4.3.3).
type Node struct {
	Leaf   *LeafNode
	Parent *ParentNode
}

// MarshalMLS encodes Node.
func (n *Node) MarshalMLS(b *cryptobyte.Builder) {
	switch {
	case n.Leaf != nil && n.Parent == nil:
		b.AddUint8(uint8(NodeTypeLeaf))
		n.Leaf.MarshalMLS(b)
	case n.Parent != nil && n.Leaf == nil:
		b.AddUint8(uint8(NodeTypeParent))
		n.Parent.MarshalMLS(b)
	default:
		b.SetError(ErrInvalidStruct)
	}
}

// UnmarshalMLS decodes Node.
func (n *Node) UnmarshalMLS(s *cryptobyte.String) bool {
	*n = Node{}
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	switch NodeType(t) {
	case NodeTypeLeaf:
		n.Leaf = new(LeafNode)
		return n.Leaf.UnmarshalMLS(s)
	case NodeTypeParent:
		n.Parent = new(ParentNode)
		return n.Parent.UnmarshalMLS(s)
	}
	return false
}

// RatchetTree is optional<Node> ratchet_tree<V> (§12.4.3.3): the nodes of
// a tree in array order, nil for a blank node.
type RatchetTree []*Node

// MarshalMLS encodes the tree.
func (t RatchetTree) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, n := range t {
			codec.AddOptional(b, n != nil, func(b *cryptobyte.Builder) { n.MarshalMLS(b) })
		}
	})
}

// UnmarshalMLS decodes the tree. Structural rules (leaves at even
// positions, no trailing blank) are checked by the tree's consumer.
func (t *RatchetTree) UnmarshalMLS(s *cryptobyte.String) bool {
	var out RatchetTree
	ok := codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var present bool
		if !codec.ReadOptional(s, &present) {
			return false
		}
		if !present {
			out = append(out, nil)
			return true
		}
		n := new(Node)
		if !n.UnmarshalMLS(s) {
			return false
		}
		out = append(out, n)
		return true
	})
	*t = out
	return ok
}

// UpdatePathNode is one node of an UpdatePath (§7.6).
type UpdatePathNode struct {
	EncryptionKey       []byte // HPKEPublicKey
	EncryptedPathSecret []HPKECiphertext
}

// MarshalMLS encodes UpdatePathNode.
func (u *UpdatePathNode) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, u.EncryptionKey)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range u.EncryptedPathSecret {
			u.EncryptedPathSecret[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS decodes UpdatePathNode.
func (u *UpdatePathNode) UnmarshalMLS(s *cryptobyte.String) bool {
	*u = UpdatePathNode{}
	return codec.ReadOpaque(s, &u.EncryptionKey) &&
		codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var c HPKECiphertext
			if !c.UnmarshalMLS(s) {
				return false
			}
			u.EncryptedPathSecret = append(u.EncryptedPathSecret, c)
			return true
		})
}

// UpdatePath is the new leaf and path of a committer (§7.6).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// MarshalMLS encodes UpdatePath.
func (u *UpdatePath) MarshalMLS(b *cryptobyte.Builder) {
	u.LeafNode.MarshalMLS(b)
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range u.Nodes {
			u.Nodes[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS decodes UpdatePath.
func (u *UpdatePath) UnmarshalMLS(s *cryptobyte.String) bool {
	*u = UpdatePath{}
	return u.LeafNode.UnmarshalMLS(s) &&
		codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var n UpdatePathNode
			if !n.UnmarshalMLS(s) {
				return false
			}
			u.Nodes = append(u.Nodes, n)
			return true
		})
}
