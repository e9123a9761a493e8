package mls_test

import (
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

func decodeTree(t *testing.T, cs suite.CipherSuite, data []byte) *ratchettree.Tree {
	t.Helper()
	var rt wire.RatchetTree
	if err := codec.Unmarshal(data, &rt); err != nil {
		t.Fatalf("decoding ratchet tree: %v", err)
	}
	tree, err := ratchettree.FromWire(cs, rt)
	if err != nil {
		t.Fatalf("FromWire: %v", err)
	}
	return tree
}

func TestVectorsTreeValidation(t *testing.T) {
	type vector struct {
		CipherSuite suite.CipherSuite `json:"cipher_suite"`
		Tree        hexBytes          `json:"tree"`
		GroupID     hexBytes          `json:"group_id"`
		Resolutions [][]uint32        `json:"resolutions"`
		TreeHashes  []hexBytes        `json:"tree_hashes"`
	}
	forEachVector(t, "tree-validation.json", func(t *testing.T, v *vector) {
		tree := decodeTree(t, v.CipherSuite, v.Tree)
		if int(tree.Width()) != len(v.Resolutions) || len(v.TreeHashes) != len(v.Resolutions) {
			t.Fatalf("tree width %d, vector has %d resolutions and %d hashes", tree.Width(), len(v.Resolutions), len(v.TreeHashes))
		}
		for i := range v.Resolutions {
			res := tree.Resolution(treemath.NodeIndex(i), nil)
			if len(res) != len(v.Resolutions[i]) {
				t.Errorf("resolution(%d) = %v, want %v", i, res, v.Resolutions[i])
				continue
			}
			for j := range res {
				if uint32(res[j]) != v.Resolutions[i][j] {
					t.Errorf("resolution(%d) = %v, want %v", i, res, v.Resolutions[i])
					break
				}
			}
			checkBytes(t, "tree hash", tree.NodeHash(treemath.NodeIndex(i)), v.TreeHashes[i])
		}
		if err := tree.Verify(v.GroupID, ratchettree.LeafCheck{}); err != nil {
			t.Errorf("Verify: %v", err)
		}
	})
}

func TestVectorsTreeOperations(t *testing.T) {
	type vector struct {
		CipherSuite    suite.CipherSuite `json:"cipher_suite"`
		TreeBefore     hexBytes          `json:"tree_before"`
		Proposal       hexBytes          `json:"proposal"`
		ProposalSender uint32            `json:"proposal_sender"`
		TreeHashBefore hexBytes          `json:"tree_hash_before"`
		TreeAfter      hexBytes          `json:"tree_after"`
		TreeHashAfter  hexBytes          `json:"tree_hash_after"`
	}
	forEachVector(t, "tree-operations.json", func(t *testing.T, v *vector) {
		tree := decodeTree(t, v.CipherSuite, v.TreeBefore)
		checkBytes(t, "tree hash before", tree.TreeHash(), v.TreeHashBefore)
		var pm wire.ProposalMessage
		if err := codec.Unmarshal(v.Proposal, &pm); err != nil {
			t.Fatalf("decoding proposal: %v", err)
		}
		switch p := pm.Proposal.(type) {
		case *wire.Add:
			tree.AddLeaf(&p.KeyPackage.LeafNode)
		case *wire.Update:
			tree.UpdateLeaf(treemath.LeafIndex(v.ProposalSender), &p.LeafNode)
		case *wire.Remove:
			tree.RemoveLeaf(treemath.LeafIndex(p.Removed))
			tree.Truncate()
		default:
			t.Fatalf("unexpected proposal %T", p)
		}
		checkBytes(t, "tree after", codec.MustMarshal(tree.Wire()), v.TreeAfter)
		checkBytes(t, "tree hash after", tree.TreeHash(), v.TreeHashAfter)
	})
}

func TestVectorsTreeKEM(t *testing.T) {
	type pathSecret struct {
		Node       uint32   `json:"node"`
		PathSecret hexBytes `json:"path_secret"`
	}
	type leafPrivate struct {
		Index          uint32       `json:"index"`
		EncryptionPriv hexBytes     `json:"encryption_priv"`
		SignaturePriv  hexBytes     `json:"signature_priv"`
		PathSecrets    []pathSecret `json:"path_secrets"`
	}
	type updatePath struct {
		Sender        uint32     `json:"sender"`
		UpdatePath    hexBytes   `json:"update_path"`
		PathSecrets   []hexBytes `json:"path_secrets"`
		CommitSecret  hexBytes   `json:"commit_secret"`
		TreeHashAfter hexBytes   `json:"tree_hash_after"`
	}
	type vector struct {
		CipherSuite             suite.CipherSuite `json:"cipher_suite"`
		GroupID                 hexBytes          `json:"group_id"`
		Epoch                   uint64            `json:"epoch"`
		ConfirmedTranscriptHash hexBytes          `json:"confirmed_transcript_hash"`
		RatchetTree             hexBytes          `json:"ratchet_tree"`
		LeavesPrivate           []leafPrivate     `json:"leaves_private"`
		UpdatePaths             []updatePath      `json:"update_paths"`
	}
	forEachVector(t, "treekem.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		base := decodeTree(t, cs, v.RatchetTree)
		privs := map[uint32]*ratchettree.PrivateKeys{}
		signers := map[uint32]*suite.SignaturePrivateKey{}
		for _, lp := range v.LeavesPrivate {
			k, err := cs.ParseHPKEPrivateKey(lp.EncryptionPriv)
			if err != nil {
				t.Fatal(err)
			}
			p := ratchettree.NewPrivateKeys(treemath.LeafIndex(lp.Index), k)
			for _, ps := range lp.PathSecrets {
				if err := p.SetPathSecret(base, treemath.NodeIndex(ps.Node), ps.PathSecret); err != nil {
					t.Fatalf("leaf %d: path secret of node %d: %v", lp.Index, ps.Node, err)
				}
			}
			if !p.Clone().Prune(base) {
				t.Fatalf("leaf %d: private key does not match the tree", lp.Index)
			}
			privs[lp.Index] = p
			if signers[lp.Index], err = cs.ParseSignaturePrivateKey(lp.SignaturePriv); err != nil {
				t.Fatal(err)
			}
		}
		groupContext := func(tree *ratchettree.Tree) []byte {
			return codec.MustMarshal(&wire.GroupContext{Version: wire.MLS10, CipherSuite: cs, GroupID: v.GroupID,
				Epoch: v.Epoch, TreeHash: tree.TreeHash(), ConfirmedTranscriptHash: v.ConfirmedTranscriptHash})
		}
		for _, u := range v.UpdatePaths {
			var up wire.UpdatePath
			if err := codec.Unmarshal(u.UpdatePath, &up); err != nil {
				t.Fatalf("decoding update path: %v", err)
			}
			sender := treemath.LeafIndex(u.Sender)
			merged := base.Clone()
			if err := merged.MergeUpdatePath(sender, &up); err != nil {
				t.Fatalf("sender %d: merging: %v", u.Sender, err)
			}
			checkBytes(t, "tree hash after", merged.TreeHash(), u.TreeHashAfter)
			gc := groupContext(merged)
			for j, p := range privs {
				if j == u.Sender {
					continue
				}
				want := u.PathSecrets[j]
				got, err := p.PathSecretAt(base, sender, &up, gc)
				if err != nil {
					t.Fatalf("sender %d, receiver %d: %v", u.Sender, j, err)
				}
				checkBytes(t, "path secret", got, want)
				cs2, err := p.Clone().DecryptPath(base, sender, &up, gc, nil)
				if err != nil {
					t.Fatalf("sender %d, receiver %d: DecryptPath: %v", u.Sender, j, err)
				}
				checkBytes(t, "commit secret", cs2, u.CommitSecret)
			}

			// Create a fresh UpdatePath from the same sender and check that
			// every other member derives the same commit secret.
			own := base.Clone()
			leaf := *base.Leaf(sender)
			o, err := own.ApplyOwnPath(sender, leaf, signers[u.Sender], v.GroupID, nil)
			if err != nil {
				t.Fatalf("ApplyOwnPath: %v", err)
			}
			gc = groupContext(own)
			newPath, err := own.EncryptPath(o, gc, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			check := base.Clone()
			if err := check.MergeUpdatePath(sender, newPath); err != nil {
				t.Fatalf("merging own path: %v", err)
			}
			checkBytes(t, "tree hash of own path", check.TreeHash(), own.TreeHash())
			if err := check.VerifyParentHashes(); err != nil {
				t.Errorf("own path: %v", err)
			}
			for j, p := range privs {
				if j == u.Sender {
					continue
				}
				got, err := p.Clone().DecryptPath(base, sender, newPath, gc, nil)
				if err != nil {
					t.Fatalf("receiver %d of own path: %v", j, err)
				}
				checkBytes(t, "commit secret of own path", got, o.CommitSecret)
			}
		}
	})
}
