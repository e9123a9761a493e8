package secrettree

import (
	"sort"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
)

// MarshalMLS encodes the tree's remaining secrets: the node secrets not yet
// consumed and every ratchet's position, secret and retained skipped keys.
// The encoding holds secrets and must be stored encrypted.
func (t *Tree) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint32(t.leaves)
	nodes := make([]treemath.NodeIndex, 0, len(t.nodes))
	for n := range t.nodes {
		nodes = append(nodes, n)
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i] < nodes[j] })
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, n := range nodes {
			b.AddUint32(uint32(n))
			codec.AddOpaque(b, t.nodes[n])
		}
	})
	ids := make([]ratchetID, 0, len(t.ratchets))
	for id := range t.ratchets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].leaf != ids[j].leaf {
			return ids[i].leaf < ids[j].leaf
		}
		return ids[i].typ < ids[j].typ
	})
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, id := range ids {
			r := t.ratchets[id]
			b.AddUint32(uint32(id.leaf))
			b.AddUint8(uint8(id.typ))
			b.AddUint32(r.next)
			codec.AddOpaque(b, r.secret)
			codec.AddVector(b, func(b *cryptobyte.Builder) {
				for _, g := range r.order {
					k := r.skipped[g]
					b.AddUint32(g)
					codec.AddOpaque(b, k.Key)
					codec.AddOpaque(b, k.Nonce)
				}
			})
		}
	})
}

// Unmarshal decodes a tree encoded by MarshalMLS.
func Unmarshal(cs suite.CipherSuite, cfg Config, s *cryptobyte.String) (*Tree, bool) {
	t := &Tree{cs: cs, cfg: cfg, nodes: map[treemath.NodeIndex][]byte{}, ratchets: map[ratchetID]*ratchet{}}
	if !s.ReadUint32(&t.leaves) {
		return nil, false
	}
	width := treemath.Width(t.leaves)
	ok := codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var n uint32
		var secret []byte
		if !s.ReadUint32(&n) || !codec.ReadOpaque(s, &secret) || n >= width {
			return false
		}
		t.nodes[treemath.NodeIndex(n)] = append([]byte(nil), secret...)
		return true
	})
	if !ok {
		return nil, false
	}
	ok = codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var leaf uint32
		var typ uint8
		r := &ratchet{}
		var secret []byte
		if !s.ReadUint32(&leaf) || !s.ReadUint8(&typ) || !s.ReadUint32(&r.next) || !codec.ReadOpaque(s, &secret) ||
			leaf >= t.leaves || typ > uint8(Application) {
			return false
		}
		r.secret = append([]byte(nil), secret...)
		if !codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var k KeyNonce
			var key, nonce []byte
			if !s.ReadUint32(&k.Generation) || !codec.ReadOpaque(s, &key) || !codec.ReadOpaque(s, &nonce) {
				return false
			}
			k.Key, k.Nonce = append([]byte(nil), key...), append([]byte(nil), nonce...)
			if r.skipped == nil {
				r.skipped = map[uint32]KeyNonce{}
			}
			r.skipped[k.Generation] = k
			r.order = append(r.order, k.Generation)
			return true
		}) {
			return false
		}
		t.ratchets[ratchetID{treemath.LeafIndex(leaf), RatchetType(typ)}] = r
		return true
	})
	if !ok {
		return nil, false
	}
	return t, true
}
