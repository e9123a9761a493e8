package ratchettree

import (
	"bytes"
	"fmt"
	"time"

	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// CredentialValidator checks that a credential is acceptable for a
// signature key (the Authentication Service of §5.3.1). It returns an error
// to reject it.
type CredentialValidator func(cred *wire.Credential, signatureKey []byte) error

// LeafCheck is the context in which a LeafNode is validated (§7.3).
type LeafCheck struct {
	// Source is the leaf_node_source the context requires; 0 accepts any
	// (for leaves already in a tree).
	Source wire.LeafNodeSource
	// GroupID and Index are the signature context of update and commit
	// leaves.
	GroupID []byte
	Index   LeafIndex
	// Replaces is set when the leaf replaces the member at Index (updates
	// and commits): that member is ignored by the uniqueness and
	// credential-support checks, and an update must change the encryption
	// key.
	Replaces bool
	// Required is the group's required_capabilities, if any.
	Required *wire.RequiredCapabilities
	// Now, when not zero, is the time against which a key_package leaf's
	// lifetime is checked; MaxLifetime, when not zero, bounds its length.
	Now         time.Time
	MaxLifetime time.Duration
	// ValidateCredential, when set, is the application's credential check.
	ValidateCredential CredentialValidator
	// SkipUniqueness and SkipSupport leave out the checks against the other
	// members, for validating the leaves of a tree all at once.
	SkipUniqueness bool
	SkipSupport    bool
	// SkipSignature leaves out the signature check, for a leaf whose
	// signature the caller has already verified.
	SkipSignature bool
	// RepeatedKey is set for a leaf whose signature key signs often (a
	// member's update or commit leaf): the signature is checked with
	// VerifyWithLabelRepeated.
	RepeatedKey bool
}

func leafError(rule error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", rule, fmt.Sprintf(format, args...))
}

// ValidateLeaf checks leaf against the rules of §7.3 in the context c.
func (t *Tree) ValidateLeaf(leaf *wire.LeafNode, c LeafCheck) error {
	if err := t.validateLeafAlone(leaf, c); err != nil {
		return err
	}
	if c.SkipSignature {
		return nil
	}
	verify := leaf.VerifySignature
	if c.RepeatedKey {
		verify = leaf.VerifySignatureRepeated
	}
	if err := verify(t.cs, c.GroupID, uint32(c.Index)); err != nil {
		return leafError(ErrLeafSignature, "%v", err)
	}
	return nil
}

// validateLeafAlone is ValidateLeaf without the signature check.
func (t *Tree) validateLeafAlone(leaf *wire.LeafNode, c LeafCheck) error {
	if c.Source != 0 && leaf.Source != c.Source {
		return leafError(ErrLeafSource, "%d, want %d", leaf.Source, c.Source)
	}
	if c.ValidateCredential != nil {
		if err := c.ValidateCredential(&leaf.Credential, leaf.SignatureKey); err != nil {
			return fmt.Errorf("%w: %w", ErrLeafCredential, err)
		}
	}
	if err := t.cs.ValidateSignaturePublicKey(leaf.SignatureKey); err != nil {
		return leafError(ErrLeafPublicKey, "signature key: %v", err)
	}
	if err := t.cs.ValidateHPKEPublicKey(leaf.EncryptionKey); err != nil {
		return leafError(ErrLeafPublicKey, "encryption key: %v", err)
	}
	caps := &leaf.Capabilities
	if !caps.HasCredential(leaf.Credential.Type) {
		return leafError(ErrLeafOwnCredential, "type %d", leaf.Credential.Type)
	}
	for _, x := range leaf.Extensions {
		if !x.Type.IsDefault() && !containsExt(caps.Extensions, x.Type) {
			return leafError(ErrLeafExtension, "extension %d", x.Type)
		}
	}
	if r := c.Required; r != nil {
		for _, x := range r.Extensions {
			if !caps.HasExtension(x) {
				return leafError(ErrLeafRequired, "extension %d", x)
			}
		}
		for _, p := range r.Proposals {
			if !caps.HasProposal(p) {
				return leafError(ErrLeafRequired, "proposal %d", p)
			}
		}
		for _, ct := range r.Credentials {
			if !caps.HasCredential(ct) {
				return leafError(ErrLeafRequired, "credential %d", ct)
			}
		}
	}
	if leaf.Source == wire.LeafNodeSourceKeyPackage {
		lt := leaf.Lifetime
		if lt.NotBefore > lt.NotAfter {
			return leafError(ErrLeafLifetime, "ends before it starts")
		}
		if !c.Now.IsZero() {
			now := uint64(c.Now.Unix())
			if now < lt.NotBefore || now > lt.NotAfter {
				return leafError(ErrLeafLifetime, "now is outside")
			}
		}
		if c.MaxLifetime > 0 && lt.NotAfter-lt.NotBefore > uint64(c.MaxLifetime/time.Second) {
			return leafError(ErrLeafLifetime, "longer than %v", c.MaxLifetime)
		}
	}
	replaced := LeafIndex(^uint32(0))
	if c.Replaces {
		replaced = c.Index
		if leaf.Source == wire.LeafNodeSourceUpdate {
			if old := t.Leaf(c.Index); old != nil && bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
				return leafError(ErrLeafKeyUnchanged, "")
			}
		}
	}
	if !c.SkipSupport {
		if !t.CredentialTypeSupportedByAll(leaf.Credential.Type, replaced) {
			return leafError(ErrLeafCredentialSupport, "type %d not supported by every member", leaf.Credential.Type)
		}
		for _, ct := range t.CredentialTypesInUse(replaced) {
			if !caps.HasCredential(ct) {
				return leafError(ErrLeafCredentialSupport, "does not support type %d used in the group", ct)
			}
		}
	}
	if !c.SkipUniqueness {
		if x, ok := t.FindEncryptionKey(leaf.EncryptionKey); ok && !(c.Replaces && x == c.Index.Node()) {
			return fmt.Errorf("%w: encryption key already used by node %d", ErrDuplicateKey, x)
		}
		if l, ok := t.FindSignatureKey(leaf.SignatureKey); ok && !(c.Replaces && l == c.Index) {
			return fmt.Errorf("%w: signature key already used by leaf %d", ErrDuplicateKey, l)
		}
	}
	return nil
}

func containsExt(v []wire.ExtensionType, x wire.ExtensionType) bool {
	for _, y := range v {
		if y == x {
			return true
		}
	}
	return false
}

// Verify checks a tree received from outside the group (§12.4.3.1): every
// leaf is valid (signatures checked on all cores), every credential type
// in use is supported by every member, unmerged leaves are consistent, and
// every non-blank parent is parent-hash valid.
// The uniqueness of every node's keys was checked by FromWire.
func (t *Tree) Verify(groupID []byte, c LeafCheck) error {
	if err := t.verifyLeaves(groupID, c); err != nil {
		return err
	}
	for ct, n := range t.counts.inUse {
		if n > 0 && t.counts.supported[ct] != t.members {
			return leafError(ErrLeafCredentialSupport, "type %d not supported by every member", ct)
		}
	}
	if err := t.VerifyUnmergedLeaves(); err != nil {
		return err
	}
	return t.VerifyParentHashes()
}

func (t *Tree) verifyLeaves(groupID []byte, c LeafCheck) error {
	c.Source, c.Replaces, c.SkipUniqueness, c.SkipSupport = 0, false, true, true
	c.GroupID = groupID
	idx := t.LeafIndices()
	return forEach(len(idx), func(i int) error {
		cc := c
		cc.Index = idx[i]
		if err := t.ValidateLeaf(t.Leaf(idx[i]), cc); err != nil {
			return fmt.Errorf("leaf %d: %w", idx[i], err)
		}
		return nil
	})
}

// VerifyUnmergedLeaves checks, for each non-blank parent and each of its
// unmerged leaves, that the leaf is a non-blank descendant and that every
// non-blank node between them lists it too (§12.4.3.1).
func (t *Tree) VerifyUnmergedLeaves() error {
	for x := NodeIndex(1); uint32(x) < t.Width(); x += 2 {
		p := t.ParentNode(x)
		if p == nil {
			continue
		}
		lo, hi := subtreeLeaves(x)
		for _, u := range p.UnmergedLeaves {
			if u < lo || u >= hi {
				return fmt.Errorf("%w: leaf %d is not below node %d", ErrUnmergedLeaves, u, x)
			}
			if t.Leaf(LeafIndex(u)) == nil {
				return fmt.Errorf("%w: leaf %d is blank", ErrUnmergedLeaves, u)
			}
			for _, a := range treemath.DirectPath(LeafIndex(u).Node(), t.leaves) {
				if a == x {
					break
				}
				if ap := t.ParentNode(a); ap != nil && !containsU32(ap.UnmergedLeaves, u) {
					return fmt.Errorf("%w: node %d does not list leaf %d", ErrUnmergedLeaves, a, u)
				}
			}
		}
	}
	return nil
}

// VerifyParentHashes checks that every non-blank parent node is
// parent-hash valid: exactly one descendant's parent_hash chains to it
// (§7.9.2, top-down). The parents are checked on all cores.
func (t *Tree) VerifyParentHashes() error {
	var parents []NodeIndex
	for x := NodeIndex(1); uint32(x) < t.Width(); x += 2 {
		if t.ParentNode(x) != nil {
			parents = append(parents, x)
		}
	}
	if len(parents) > 1 {
		t.TreeHash() // the copath children's hashes, computed once and on all cores
	}
	return forEach(len(parents), func(i int) error {
		x := parents[i]
		p := t.ParentNode(x)
		l, _ := treemath.Left(x)
		r, _ := treemath.Right(x)
		ph := t.parentHasher(p)
		n := 0
		if t.parentHashValidFrom(p, l, r, ph) {
			n++
		}
		if t.parentHashValidFrom(p, r, l, ph) {
			n++
		}
		if n != 1 {
			return fmt.Errorf("%w: parent node %d is not parent-hash valid", ErrParentHash, x)
		}
		return nil
	})
}

// parentHashValidFrom reports whether some node D in the resolution of
// child c (with sibling s) of parent p has a valid parent hash for p: D's
// parent_hash is the parent hash of p with copath child s (ph(s)), and the
// resolution of c is D plus p's unmerged leaves below c.
func (t *Tree) parentHashValidFrom(p *wire.ParentNode, c, s NodeIndex, ph func(NodeIndex) []byte) bool {
	lo, hi := subtreeLeaves(c)
	var unmerged int
	for _, u := range p.UnmergedLeaves {
		if u >= lo && u < hi {
			unmerged++
		}
	}
	res, ok := t.boundedResolution(c, unmerged+1)
	if !ok || len(res) != unmerged+1 {
		return false
	}
	var d NodeIndex
	found := false
	for _, n := range res {
		if n.IsLeaf() && containsU32(p.UnmergedLeaves, uint32(n.Leaf())) {
			continue
		}
		if found {
			return false
		}
		d, found = n, true
	}
	if !found {
		return false
	}
	var dHash []byte
	if d.IsLeaf() {
		leaf := t.Leaf(d.Leaf())
		if leaf.Source != wire.LeafNodeSourceCommit {
			return false
		}
		dHash = leaf.ParentHash
	} else {
		dHash = t.ParentNode(d).ParentHash
	}
	return bytes.Equal(dHash, ph(s))
}

// boundedResolution returns the resolution of x, or ok=false once it holds
// more than limit nodes.
func (t *Tree) boundedResolution(x NodeIndex, limit int) (res []NodeIndex, ok bool) {
	var walk func(x NodeIndex) bool
	walk = func(x NodeIndex) bool {
		e := t.entry(x)
		switch {
		case e.leaf != nil:
			res = append(res, x)
		case e.parent != nil:
			res = append(res, x)
			for _, u := range e.parent.UnmergedLeaves {
				res = append(res, LeafIndex(u).Node())
			}
		case !x.IsLeaf():
			l, _ := treemath.Left(x)
			r, _ := treemath.Right(x)
			return walk(l) && walk(r)
		}
		return len(res) <= limit
	}
	ok = walk(x)
	return res, ok
}
