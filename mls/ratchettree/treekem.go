package ratchettree

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// PrivateKeys holds the HPKE private keys a member knows (§7.4): its
// leaf's, and those of the ancestors it has received path secrets for. The
// keys must stay secret. A PrivateKeys value is copy-on-write friendly:
// Clone shares the (immutable) keys.
type PrivateKeys struct {
	leaf LeafIndex
	keys map[NodeIndex]*suite.HPKEPrivateKey
}

// NewPrivateKeys returns the private state of the member at leaf whose leaf
// encryption key is leafKey.
func NewPrivateKeys(leaf LeafIndex, leafKey *suite.HPKEPrivateKey) *PrivateKeys {
	return &PrivateKeys{leaf: leaf, keys: map[NodeIndex]*suite.HPKEPrivateKey{leaf.Node(): leafKey}}
}

// Leaf returns the member's leaf index.
func (p *PrivateKeys) Leaf() LeafIndex { return p.leaf }

// Key returns the private key of node x, if known.
func (p *PrivateKeys) Key(x NodeIndex) *suite.HPKEPrivateKey { return p.keys[x] }

// Nodes returns the nodes whose private keys are known.
func (p *PrivateKeys) Nodes() []NodeIndex {
	out := make([]NodeIndex, 0, len(p.keys))
	for x := range p.keys {
		out = append(out, x)
	}
	return out
}

// Set records the private key of node x.
func (p *PrivateKeys) Set(x NodeIndex, k *suite.HPKEPrivateKey) { p.keys[x] = k }

// Clone returns a copy sharing the key objects.
func (p *PrivateKeys) Clone() *PrivateKeys {
	c := &PrivateKeys{leaf: p.leaf, keys: make(map[NodeIndex]*suite.HPKEPrivateKey, len(p.keys))}
	for x, k := range p.keys {
		c.keys[x] = k
	}
	return c
}

// String redacts the keys.
func (p *PrivateKeys) String() string { return "PrivateKeys(redacted)" }

// Prune drops the keys of nodes whose public key in t is no longer theirs
// (blanked or replaced), so that outdated keys are forgotten (§7.5). It
// reports whether the leaf key is still valid. Keys still shared with other
// epochs are not overwritten; Destroy does that when an epoch is deleted.
func (p *PrivateKeys) Prune(t *Tree) bool {
	for x, k := range p.keys {
		if !t.InRange(x) || !bytes.Equal(t.EncryptionKey(x), k.PublicKey()) {
			delete(p.keys, x)
		}
	}
	_, ok := p.keys[p.leaf.Node()]
	return ok
}

// Destroy overwrites every key. Use it only when no other state shares them.
func (p *PrivateKeys) Destroy() {
	for x, k := range p.keys {
		k.Destroy()
		delete(p.keys, x)
	}
}

// deriveNodeKey derives the key pair of a node from its path secret (§7.4).
func deriveNodeKey(cs suite.CipherSuite, pathSecret []byte) (*suite.HPKEPrivateKey, error) {
	nodeSecret := cs.DeriveSecret(pathSecret, "node")
	defer clear(nodeSecret)
	return cs.DeriveKeyPair(nodeSecret)
}

// deriveNodeKeys derives the key pair of each path secret, on all cores.
func deriveNodeKeys(cs suite.CipherSuite, secrets [][]byte) ([]*suite.HPKEPrivateKey, error) {
	keys := make([]*suite.HPKEPrivateKey, len(secrets))
	err := forEach(len(secrets), func(i int) error {
		k, err := deriveNodeKey(cs, secrets[i])
		keys[i] = k
		return err
	})
	return keys, err
}

// SetPathSecret sets the key of node x alone from its path secret,
// checking it against the tree.
func (p *PrivateKeys) SetPathSecret(t *Tree, x NodeIndex, pathSecret []byte) error {
	k, err := deriveNodeKey(t.cs, pathSecret)
	if err != nil {
		return err
	}
	if !bytes.Equal(k.PublicKey(), t.EncryptionKey(x)) {
		return fmt.Errorf("%w: node %d", ErrPathKey, x)
	}
	p.keys[x] = k
	return nil
}

// ImportPathSecret sets the key of node x from pathSecret and derives the
// keys of the non-blank nodes above it, as a new member does with the path
// secret of a Welcome (§12.4.3.1). Every derived public key must match the
// tree.
func (p *PrivateKeys) ImportPathSecret(t *Tree, x NodeIndex, pathSecret []byte) error {
	secret := append([]byte(nil), pathSecret...)
	nodes := append([]NodeIndex{x}, treemath.DirectPath(x, t.leaves)...)
	for i, n := range nodes {
		if i > 0 && t.IsBlank(n) {
			continue
		}
		if i > 0 {
			next := t.cs.DeriveSecret(secret, "path")
			clear(secret)
			secret = next
		}
		k, err := deriveNodeKey(t.cs, secret)
		if err != nil {
			return err
		}
		if !bytes.Equal(k.PublicKey(), t.EncryptionKey(n)) {
			clear(secret)
			return fmt.Errorf("%w: node %d", ErrPathKey, n)
		}
		p.keys[n] = k
	}
	clear(secret)
	return nil
}

// OwnPath is the state of an UpdatePath this member is creating: the
// filtered direct path, the path secrets and the commit secret. Path
// secrets must stay secret; Destroy overwrites them once the Welcome
// messages are made.
type OwnPath struct {
	Leaf         LeafIndex
	LeafNode     *wire.LeafNode
	Nodes        []NodeIndex // filtered direct path
	Copath       []NodeIndex // copath child of each node
	PathSecrets  [][]byte
	NodeKeys     []*suite.HPKEPrivateKey
	LeafKey      *suite.HPKEPrivateKey
	CommitSecret []byte
}

// Destroy overwrites the path secrets and the commit secret.
func (o *OwnPath) Destroy() {
	for _, s := range o.PathSecrets {
		clear(s)
	}
	clear(o.CommitSecret)
}

// PathSecretFor returns the path secret of the lowest node of the filtered
// direct path that is an ancestor of leaf l (for l's Welcome).
func (o *OwnPath) PathSecretFor(l LeafIndex) ([]byte, NodeIndex, bool) {
	for i, x := range o.Nodes {
		if treemath.IsAncestor(x, l.Node()) {
			return o.PathSecrets[i], x, true
		}
	}
	return nil, 0, false
}

// ApplyOwnPath updates the direct path of leaf own with fresh keys (§7.4,
// §7.5): it derives path secrets and node keys for the filtered direct
// path, blanks the direct path, installs the new parent nodes with their
// parent hashes, and installs leaf (with a fresh encryption key, source
// commit and the parent hash) signed by signer. leaf is a template: its
// encryption key, source, parent hash and signature are set here.
func (t *Tree) ApplyOwnPath(own LeafIndex, leaf wire.LeafNode, signer *suite.SignaturePrivateKey, groupID []byte, r io.Reader) (*OwnPath, error) {
	if r == nil {
		r = rand.Reader
	}
	cs := t.cs
	if uint32(own) >= t.leaves {
		return nil, ErrBlankLeaf
	}
	fdp, copath := t.FilteredDirectPath(own)
	o := &OwnPath{Leaf: own, Nodes: fdp, Copath: copath}
	leafKey, err := cs.GenerateHPKEKey(r)
	if err != nil {
		return nil, err
	}
	o.LeafKey = leafKey
	secret := make([]byte, cs.Nh())
	if _, err := io.ReadFull(r, secret); err != nil {
		return nil, fmt.Errorf("ratchettree: reading randomness: %w", err)
	}
	for range fdp {
		o.PathSecrets = append(o.PathSecrets, secret)
		secret = cs.DeriveSecret(secret, "path")
	}
	o.CommitSecret = secret
	if o.NodeKeys, err = deriveNodeKeys(cs, o.PathSecrets); err != nil {
		return nil, err
	}

	t.BlankPath(own)
	parentHash := t.installPath(fdp, copath, func(i int) []byte { return o.NodeKeys[i].PublicKey() })
	leaf.EncryptionKey = leafKey.PublicKey()
	leaf.Source = wire.LeafNodeSourceCommit
	leaf.ParentHash = parentHash
	leaf.Lifetime = wire.Lifetime{}
	if err := leaf.Sign(cs, signer, groupID, uint32(own)); err != nil {
		return nil, err
	}
	o.LeafNode = &leaf
	t.SetLeaf(own, &leaf)
	return o, nil
}

// installPath sets the parent nodes of a filtered direct path with the
// given public keys, computing parent hashes from the root down, and
// returns the parent hash the leaf must carry.
func (t *Tree) installPath(fdp, copath []NodeIndex, key func(i int) []byte) []byte {
	var above []byte // parent hash of the node above in the filtered path
	for i := len(fdp) - 1; i >= 0; i-- {
		p := &wire.ParentNode{EncryptionKey: key(i), ParentHash: above}
		if above == nil {
			p.ParentHash = []byte{}
		}
		t.SetParent(fdp[i], p)
		above = t.parentHash(p, copath[i])
	}
	if above == nil {
		return []byte{}
	}
	return above
}

// EncryptPath encrypts the path secrets of o to the resolutions of the
// copath nodes, leaving out the leaves in exclude (members added by the
// same commit), and returns the UpdatePath (§7.6). groupContext is the
// encoded provisional GroupContext.
func (t *Tree) EncryptPath(o *OwnPath, groupContext []byte, exclude map[LeafIndex]bool, r io.Reader) (*wire.UpdatePath, error) {
	if r == nil {
		r = rand.Reader
	}
	up := &wire.UpdatePath{LeafNode: *o.LeafNode, Nodes: make([]wire.UpdatePathNode, len(o.Nodes))}
	// Each encryption reads its randomness from r in the order of the
	// path and its resolutions, as if they ran one after the other, and
	// then they run on all cores.
	type seal struct {
		node, at int
		to       NodeIndex
		pub      []byte
		seed     []byte
	}
	var seals []seal
	seedSize := t.cs.EncryptSeedSize()
	for i := range o.Nodes {
		res := t.Resolution(o.Copath[i], exclude)
		up.Nodes[i] = wire.UpdatePathNode{EncryptionKey: o.NodeKeys[i].PublicKey(), EncryptedPathSecret: make([]wire.HPKECiphertext, len(res))}
		for j, x := range res {
			seed := make([]byte, seedSize)
			if _, err := io.ReadFull(r, seed); err != nil {
				return nil, fmt.Errorf("ratchettree: reading randomness: %w", err)
			}
			seals = append(seals, seal{node: i, at: j, to: x, pub: t.EncryptionKey(x), seed: seed})
		}
	}
	defer func() {
		for _, s := range seals {
			clear(s.seed)
		}
	}()
	err := forEach(len(seals), func(k int) error {
		s := seals[k]
		kem, ct, err := t.cs.EncryptWithLabel(s.pub, "UpdatePathNode", groupContext, o.PathSecrets[s.node], bytes.NewReader(s.seed))
		if err != nil {
			return fmt.Errorf("ratchettree: encrypting to node %d: %w", s.to, err)
		}
		up.Nodes[s.node].EncryptedPathSecret[s.at] = wire.HPKECiphertext{KEMOutput: kem, Ciphertext: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return up, nil
}

// MergeUpdatePath applies a received UpdatePath from leaf sender (§7.5):
// it checks that the path matches the sender's filtered direct path,
// blanks the direct path, installs the new parent nodes, verifies the
// leaf's parent hash and installs the leaf. The leaf must have been
// validated by the caller; t must already hold the commit's proposals.
func (t *Tree) MergeUpdatePath(sender LeafIndex, up *wire.UpdatePath) error {
	if t.Leaf(sender) == nil {
		return ErrBlankLeaf
	}
	fdp, copath := t.FilteredDirectPath(sender)
	if len(fdp) != len(up.Nodes) {
		return fmt.Errorf("%w: %d path nodes for a filtered direct path of %d", ErrPathLength, len(up.Nodes), len(fdp))
	}
	t.BlankPath(sender)
	ph := t.installPath(fdp, copath, func(i int) []byte { return up.Nodes[i].EncryptionKey })
	if !bytes.Equal(ph, up.LeafNode.ParentHash) {
		return fmt.Errorf("%w: committer's leaf", ErrParentHash)
	}
	leaf := up.LeafNode
	t.SetLeaf(sender, &leaf)
	return nil
}

// DecryptPath finds the path secret of an UpdatePath meant for this member,
// decrypts it and derives the keys of the nodes above it (§7.5), checking
// them against the path's public keys, and returns the commit secret. t is
// the tree before MergeUpdatePath (after the proposals); exclude holds the
// leaves added by the commit. On success the new keys are recorded in p.
func (p *PrivateKeys) DecryptPath(t *Tree, sender LeafIndex, up *wire.UpdatePath, groupContext []byte, exclude map[LeafIndex]bool) (commitSecret []byte, err error) {
	cs := t.cs
	fdp, copath := t.FilteredDirectPath(sender)
	if len(fdp) != len(up.Nodes) {
		return nil, ErrPathLength
	}
	me := p.leaf.Node()
	start := -1
	for i, x := range fdp {
		if treemath.IsAncestor(x, me) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: not below the sender's path", ErrNoDecryptionKey)
	}
	res := t.Resolution(copath[start], exclude)
	if len(res) != len(up.Nodes[start].EncryptedPathSecret) {
		return nil, fmt.Errorf("%w: %d ciphertexts for a resolution of %d", ErrPathLength, len(up.Nodes[start].EncryptedPathSecret), len(res))
	}
	var secret []byte
	for j, x := range res {
		k := p.keys[x]
		if k == nil || !treemath.IsAncestor(x, me) {
			continue
		}
		ct := up.Nodes[start].EncryptedPathSecret[j]
		secret, err = cs.DecryptWithLabel(k, "UpdatePathNode", groupContext, ct.KEMOutput, ct.Ciphertext)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrPathDecryption, err)
		}
		break
	}
	if secret == nil {
		return nil, ErrNoDecryptionKey
	}
	if len(secret) != cs.Nh() {
		clear(secret)
		return nil, fmt.Errorf("%w: path secret of %d bytes", ErrPathDecryption, len(secret))
	}
	// The path secrets of the nodes from start up, and the commit secret
	// after them, are a chain; their key pairs are not, and are derived
	// on all cores.
	secrets := [][]byte{secret}
	for i := start + 1; i < len(fdp); i++ {
		secrets = append(secrets, cs.DeriveSecret(secrets[len(secrets)-1], "path"))
	}
	defer func() {
		for _, s := range secrets {
			clear(s)
		}
	}()
	commitSecret = cs.DeriveSecret(secrets[len(secrets)-1], "path")
	keys, err := deriveNodeKeys(cs, secrets)
	if err != nil {
		clear(commitSecret)
		return nil, err
	}
	for i, k := range keys {
		if !bytes.Equal(k.PublicKey(), up.Nodes[start+i].EncryptionKey) {
			clear(commitSecret)
			return nil, fmt.Errorf("%w: node %d", ErrPathKey, fdp[start+i])
		}
	}
	for i, k := range keys {
		p.keys[fdp[start+i]] = k
	}
	return commitSecret, nil
}

// PathSecretAt returns the path secret this member would have derived for
// the given index of the filtered direct path; used by tests against the
// treekem vectors. It repeats DecryptPath's work without storing keys.
func (p *PrivateKeys) PathSecretAt(t *Tree, sender LeafIndex, up *wire.UpdatePath, groupContext []byte) ([]byte, error) {
	c := p.Clone()
	fdp, copath := t.FilteredDirectPath(sender)
	me := p.leaf.Node()
	for i, x := range fdp {
		if !treemath.IsAncestor(x, me) {
			continue
		}
		res := t.Resolution(copath[i], nil)
		for j, r := range res {
			if k := c.keys[r]; k != nil && treemath.IsAncestor(r, me) && j < len(up.Nodes[i].EncryptedPathSecret) {
				ct := up.Nodes[i].EncryptedPathSecret[j]
				return t.cs.DecryptWithLabel(k, "UpdatePathNode", groupContext, ct.KEMOutput, ct.Ciphertext)
			}
		}
		return nil, ErrNoDecryptionKey
	}
	return nil, ErrNoDecryptionKey
}
