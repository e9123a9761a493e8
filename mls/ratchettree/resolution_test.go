package ratchettree

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// refResolution is §4.1.1's resolution written out with no caching.
func refResolution(t *Tree, x NodeIndex, exclude map[LeafIndex]bool) []NodeIndex {
	if x.IsLeaf() {
		if t.Leaf(x.Leaf()) != nil && !exclude[x.Leaf()] {
			return []NodeIndex{x}
		}
		return nil
	}
	if p := t.ParentNode(x); p != nil {
		out := []NodeIndex{x}
		for _, u := range p.UnmergedLeaves {
			if !exclude[LeafIndex(u)] {
				out = append(out, LeafIndex(u).Node())
			}
		}
		return out
	}
	l, _ := treemath.Left(x)
	r, _ := treemath.Right(x)
	return append(refResolution(t, l, exclude), refResolution(t, r, exclude)...)
}

// TestResolutionCacheFollowsChanges changes trees at random (leaves added,
// removed and replaced, parents set and blanked, paths blanked, the tree
// extended and truncated, clones changed apart) and checks after each
// change that every node's resolution, and every leaf's filtered direct
// path, are those computed with no cache.
func TestResolutionCacheFollowsChanges(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 99))
			key := 0
			newKey := func() []byte { key++; return []byte(fmt.Sprintf("key-%d", key)) }
			newLeaf := func() *wire.LeafNode {
				return &wire.LeafNode{EncryptionKey: newKey(), SignatureKey: newKey(), Credential: wire.Credential{Type: 1}}
			}
			trees := []*Tree{New(1)}
			for step := range 300 {
				i := r.IntN(len(trees))
				tr := trees[i]
				switch op := r.IntN(10); {
				case op < 3 && tr.Leaves() < 64 || tr.Leaves() == 0:
					tr.AddLeaf(newLeaf())
				case op < 5:
					if l := LeafIndex(r.IntN(int(tr.Leaves()))); tr.Leaf(l) != nil {
						tr.RemoveLeaf(l)
						tr.Truncate()
					}
				case op < 6:
					if l := LeafIndex(r.IntN(int(tr.Leaves()))); tr.Leaf(l) != nil {
						tr.BlankPath(l)
					}
				case op < 8:
					if tr.Leaves() > 1 {
						x := NodeIndex(2*r.IntN(int(tr.Leaves())-1) + 1)
						if r.IntN(3) == 0 {
							tr.SetParent(x, nil)
						} else {
							tr.SetParent(x, &wire.ParentNode{EncryptionKey: newKey()})
						}
					}
				case op < 9:
					if len(trees) < 4 {
						trees = append(trees, tr.Clone())
					}
				case tr.Leaves() < 64:
					tr.Extend()
				}
				for j, tr := range trees {
					for x := NodeIndex(0); uint32(x) < tr.Width(); x++ {
						// Ask twice: the second answer comes from the cache.
						for range 2 {
							if got, want := tr.Resolution(x, nil), refResolution(tr, x, nil); !slices.Equal(got, want) {
								t.Fatalf("step %d, tree %d: resolution of %d = %v, want %v", step, j, x, got, want)
							}
						}
						if x.IsLeaf() && tr.Leaf(x.Leaf()) != nil {
							got, _ := tr.FilteredDirectPath(x.Leaf())
							var want []NodeIndex
							copath := treemath.Copath(x, tr.Leaves())
							for k, p := range treemath.DirectPath(x, tr.Leaves()) {
								if len(refResolution(tr, copath[k], nil)) > 0 {
									want = append(want, p)
								}
							}
							if !slices.Equal(got, want) {
								t.Fatalf("step %d, tree %d: filtered direct path of leaf %d = %v, want %v", step, j, x.Leaf(), got, want)
							}
						}
					}
				}
			}
		})
	}
}
