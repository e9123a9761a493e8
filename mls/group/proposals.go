package group

import (
	"bytes"
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// committedProposal is one entry of a commit's proposal list, resolved.
type committedProposal struct {
	proposal wire.Proposal
	sender   wire.Sender
	ref      []byte // nil for an inline proposal
	// updateKey is this member's private key for its own Update.
	updateKey *suite.HPKEPrivateKey
}

// AppliedProposal describes a proposal a commit applied.
type AppliedProposal struct {
	Proposal wire.Proposal
	Sender   wire.Sender
	// Ref is the ProposalRef for a proposal sent by reference, nil inline.
	Ref []byte
}

func invalidProposal(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidProposal, fmt.Sprintf(format, args...))
}

// canSendExternally reports whether an external sender may send a
// proposal of type t (§12.1.8). SelfRemove "cannot be sent as an external
// proposal" (draft-ietf-mls-extensions-09).
func canSendExternally(t wire.ProposalType) bool {
	switch t {
	case wire.ProposalAdd, wire.ProposalRemove, wire.ProposalPreSharedKey, wire.ProposalReInit, wire.ProposalGroupContextExtensions:
		return true
	}
	return false
}

// checkProposal applies the rules of §12.1 that concern one proposal on
// its own, as it is received (or created) in this epoch.
func (s *State) checkProposal(p wire.Proposal, sender wire.Sender) error {
	switch sender.Type {
	case wire.SenderExternal:
		if !canSendExternally(p.ProposalType()) {
			return fmt.Errorf("%w: %v proposal from an external sender", ErrInvalidSenderType, p.ProposalType())
		}
	case wire.SenderNewMemberProposal:
		if p.ProposalType() != wire.ProposalAdd {
			return fmt.Errorf("%w: new_member_proposal must be an Add", ErrInvalidSenderType)
		}
	}
	switch p := p.(type) {
	case *wire.Add:
		if err := ValidateKeyPackage(&p.KeyPackage, s.cs, s.cfg.lifetimeNow(), s.cfg.ValidateCredential); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if s.cfg.MaxLifetime > 0 {
			lt := p.KeyPackage.LeafNode.Lifetime
			if lt.NotAfter-lt.NotBefore > uint64(s.cfg.MaxLifetime.Seconds()) {
				return invalidProposal("key package lifetime exceeds %v", s.cfg.MaxLifetime)
			}
		}
	case *wire.Update:
		if sender.Type != wire.SenderMember {
			return invalidProposal("update from a non-member")
		}
		if err := s.tree.ValidateLeaf(&p.LeafNode, s.leafCheck(wire.LeafNodeSourceUpdate, LeafIndex(sender.Index), s.ctx.Extensions)); err != nil {
			return fmt.Errorf("%w: update: %w", ErrInvalidProposal, err)
		}
	case *wire.Remove:
		if s.tree.Leaf(LeafIndex(p.Removed)) == nil {
			return fmt.Errorf("%w: leaf %d", ErrRemoveUnknownMember, p.Removed)
		}
	case *wire.PreSharedKey:
		if err := s.checkPSKID(&p.PSK); err != nil {
			return err
		}
	case *wire.ReInit:
		if p.Version < s.ctx.Version {
			return invalidProposal("reinit to an older version")
		}
		if err := p.CipherSuite.Check(); err != nil {
			return fmt.Errorf("%w: reinit: %w", ErrInvalidProposal, err)
		}
	case *wire.ExternalInit:
		// Only valid inside an external commit; the list rules of §12.2
		// reject it anywhere else.
	case *wire.GroupContextExtensions:
		if _, err := requiredCapabilities(p.Extensions); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if _, err := externalSenders(p.Extensions); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
	case *wire.SelfRemove:
		// Empty. Its sender is a member: external and new_member_proposal
		// senders are refused above, and a committer's own, inline, by
		// applyProposals.
	default:
		return invalidProposal("unsupported proposal type %d", p.ProposalType())
	}
	return nil
}

// checkStandaloneProposal checks a proposal sent in a proposal message of
// wire format wf.
func (s *State) checkStandaloneProposal(p wire.Proposal, sender wire.Sender, wf wire.WireFormat) error {
	switch p.(type) {
	case *wire.ExternalInit:
		return fmt.Errorf("%w: external_init outside an external commit", ErrInvalidProposal)
	case *wire.SelfRemove:
		// "these proposals MUST be sent in an MLS PublicMessage", so that
		// an external joiner can read and include them.
		if wf != wire.WireFormatPublicMessage {
			return ErrSelfRemoveEncrypted
		}
	}
	return s.checkProposal(p, sender)
}

// checkPSKID applies the PreSharedKey rules of §12.1.4 for an ordinary
// commit.
func (s *State) checkPSKID(id *wire.PreSharedKeyID) error {
	if len(id.Nonce) != s.cs.Nh() {
		return fmt.Errorf("%w: psk_nonce of %d bytes", ErrPSKRule, len(id.Nonce))
	}
	if id.Type == wire.PSKResumption && id.Usage != wire.ResumptionApplication {
		return fmt.Errorf("%w: resumption PSK with usage %d outside reinit or branch", ErrPSKRule, id.Usage)
	}
	return nil
}

// leafCheck returns the validation context of a leaf for this group.
func (s *State) leafCheck(source wire.LeafNodeSource, index LeafIndex, exts wire.Extensions) ratchettree.LeafCheck {
	rc, _ := requiredCapabilities(exts) // validated when the extensions were accepted
	c := ratchettree.LeafCheck{
		Source:             source,
		GroupID:            s.ctx.GroupID,
		Index:              index,
		Required:           rc,
		ValidateCredential: s.cfg.ValidateCredential,
		MaxLifetime:        s.cfg.MaxLifetime,
	}
	switch source {
	case wire.LeafNodeSourceUpdate, wire.LeafNodeSourceCommit:
		c.Replaces = true
		c.RepeatedKey = true // the member's key, which signs its messages too
	case wire.LeafNodeSourceKeyPackage:
		c.Now = s.cfg.lifetimeNow()
	}
	return c
}

// resolveProposals turns a commit's ProposalOrRef list into proposals,
// looking references up in the epoch's cache.
func (s *State) resolveProposals(committer wire.Sender, list []wire.ProposalOrRef) ([]committedProposal, error) {
	out := make([]committedProposal, 0, len(list))
	for _, por := range list {
		if por.Proposal != nil {
			out = append(out, committedProposal{proposal: por.Proposal, sender: committer})
			continue
		}
		cp := s.findProposal(por.Reference)
		if cp == nil {
			return nil, fmt.Errorf("%w: %x", ErrUnknownProposal, por.Reference)
		}
		out = append(out, committedProposal{proposal: cp.proposal, sender: cp.sender, ref: cp.ref, updateKey: cp.updateKey})
	}
	return out, nil
}

func (s *State) findProposal(ref []byte) *cachedProposal {
	for _, cp := range s.proposals {
		if bytes.Equal(cp.ref, ref) {
			return cp
		}
	}
	return nil
}

// provisional is the result of applying a proposal list (§12.3).
type provisional struct {
	tree         *ratchettree.Tree
	exts         wire.Extensions
	extsChanged  bool
	added        []LeafIndex
	addedKPs     []*wire.KeyPackage
	removed      []LeafIndex
	updated      []LeafIndex
	psks         []wire.PreSharedKeyID
	externalInit *wire.ExternalInit
	reinit       *wire.ReInit
	pathRequired bool
	// ownUpdateKey is set when the commit applies this member's own Update.
	ownUpdateKey *suite.HPKEPrivateKey
	// resumed is the group whose resumption PSKs a reinit or branch commit
	// uses.
	resumed *State
}

// applyProposals validates a committed proposal list (§12.2) and applies
// it to a copy of the tree and extensions (§12.3). external marks an
// external commit, whose own list rules checkExternalCommit applies
// beforehand. allowResumptionPSK lifts the ban on reinit/branch PSKs for
// this member's own first commit in a reinitialized or branched group.
func (s *State) applyProposals(list []committedProposal, committer wire.Sender, external bool, allowResumptionPSK bool) (*provisional, error) {
	pv := &provisional{exts: s.ctx.Extensions, pathRequired: len(list) == 0}
	var (
		gce         *wire.GroupContextExtensions
		updates     []committedProposal
		selfRemoves []committedProposal
		removes     []*wire.Remove
		adds        []*wire.Add
		seenLeaves  = map[uint32]bool{}
		seenPSKs    [][]byte
	)
	// The rules only external commits have are checked before, by
	// checkExternalCommit.
	// removeLeaf checks a removal of leaf (by Remove or SelfRemove): not
	// the committer's, not a leaf already changed by the list; it needs a
	// path.
	removeLeaf := func(leaf uint32) error {
		if committer.Type == wire.SenderMember && leaf == committer.Index {
			return ErrCommitterRemoved
		}
		if seenLeaves[leaf] {
			return fmt.Errorf("%w: leaf %d", ErrDuplicateLeafChange, leaf)
		}
		seenLeaves[leaf] = true
		pv.pathRequired = true
		return nil
	}
	for _, cp := range list {
		switch p := cp.proposal.(type) {
		case *wire.Add:
			adds = append(adds, p)
		case *wire.Update:
			if committer.Type == wire.SenderMember && cp.sender == committer {
				return nil, ErrCommitterUpdate
			}
			if seenLeaves[cp.sender.Index] {
				return nil, fmt.Errorf("%w: leaf %d", ErrDuplicateLeafChange, cp.sender.Index)
			}
			seenLeaves[cp.sender.Index] = true
			updates = append(updates, cp)
			pv.pathRequired = true
		case *wire.Remove:
			if err := removeLeaf(p.Removed); err != nil {
				return nil, err
			}
			removes = append(removes, p)
		case *wire.SelfRemove:
			// draft-ietf-mls-extensions-09: only by reference (so from a
			// member: checkStandaloneProposal refuses other senders),
			// treated as a Remove of the sender's leaf (so not the
			// committer's, and with a path: "Path Required: Y").
			if cp.ref == nil {
				return nil, ErrSelfRemoveByValue
			}
			// A Remove of the same leaf is invalid next to it, as is an
			// Update, or a second SelfRemove of the sender.
			if err := removeLeaf(cp.sender.Index); err != nil {
				return nil, err
			}
			selfRemoves = append(selfRemoves, cp)
		case *wire.PreSharedKey:
			enc := codec.MustMarshal(&p.PSK)
			for _, e := range seenPSKs {
				if bytes.Equal(e, enc) {
					return nil, ErrDuplicatePSK
				}
			}
			seenPSKs = append(seenPSKs, enc)
			if !(allowResumptionPSK && p.PSK.Type == wire.PSKResumption) {
				if err := s.checkPSKID(&p.PSK); err != nil {
					return nil, err
				}
			}
			pv.psks = append(pv.psks, p.PSK)
		case *wire.ReInit:
			if len(list) != 1 {
				return nil, ErrReInitNotAlone
			}
			pv.reinit = p
		case *wire.ExternalInit:
			if !external {
				return nil, ErrExternalInitInCommit
			}
			pv.externalInit = p
			pv.pathRequired = true
		case *wire.GroupContextExtensions:
			if gce != nil {
				return nil, ErrMultipleGCE
			}
			gce = p
			pv.pathRequired = true
		default:
			return nil, fmt.Errorf("%w: unsupported proposal type %d", ErrInvalidProposalList, p.ProposalType())
		}
	}
	tree := s.tree.Clone()
	pv.tree = tree
	if gce != nil {
		pv.exts, pv.extsChanged = gce.Extensions, true
	}
	for _, cp := range updates {
		u := cp.proposal.(*wire.Update)
		l := LeafIndex(cp.sender.Index)
		if tree.Leaf(l) == nil {
			return nil, fmt.Errorf("%w: update of leaf %d", ErrBlankLeafChange, l)
		}
		if err := tree.ValidateLeaf(&u.LeafNode, s.leafCheck(wire.LeafNodeSourceUpdate, l, pv.exts)); err != nil {
			return nil, fmt.Errorf("%w: update of leaf %d: %w", ErrInvalidProposalList, l, err)
		}
		tree.UpdateLeaf(l, &u.LeafNode)
		pv.updated = append(pv.updated, l)
		if l == s.own && cp.updateKey != nil {
			// A copy: the epoch that cached the proposal deletes its own
			// when it is destroyed, while the new epoch keeps using it.
			k, err := s.cs.ParseHPKEPrivateKey(cp.updateKey.Bytes())
			if err != nil {
				return nil, err
			}
			pv.ownUpdateKey = k
		}
	}
	// SelfRemoves are applied after Updates and before Removes.
	for _, cp := range selfRemoves {
		l := LeafIndex(cp.sender.Index)
		if tree.Leaf(l) == nil {
			return nil, fmt.Errorf("%w: self_remove of leaf %d", ErrBlankLeafChange, l)
		}
		tree.RemoveLeaf(l)
		pv.removed = append(pv.removed, l)
	}
	for _, r := range removes {
		l := LeafIndex(r.Removed)
		if tree.Leaf(l) == nil {
			return nil, fmt.Errorf("%w: remove of leaf %d", ErrBlankLeafChange, l)
		}
		tree.RemoveLeaf(l)
		pv.removed = append(pv.removed, l)
	}
	if len(removes)+len(selfRemoves) > 0 {
		tree.Truncate()
	}
	if len(selfRemoves) > 0 {
		// §12.2: every member processing the commit supports a non-default
		// proposal type (those it removes or adds need not).
		if l, ok := selfRemoveUnsupported(tree, nil); ok {
			return nil, fmt.Errorf("%w: member %d lacks self_remove", ErrUnsupportedByMembers, l)
		}
	}
	for _, a := range adds {
		l := tree.NextFreeLeaf()
		if err := s.checkAdd(tree, a, l, pv.exts); err != nil {
			return nil, err
		}
		leaf := a.KeyPackage.LeafNode
		tree.AddLeaf(&leaf)
		pv.added = append(pv.added, l)
		pv.addedKPs = append(pv.addedKPs, &a.KeyPackage)
	}
	if gce != nil {
		if err := s.checkExtensionsSupported(tree, gce.Extensions); err != nil {
			return nil, err
		}
	}
	return pv, nil
}

// checkAdd validates an added KeyPackage against the tree it joins.
func (s *State) checkAdd(tree *ratchettree.Tree, a *wire.Add, l LeafIndex, exts wire.Extensions) error {
	kp := &a.KeyPackage
	if kp.CipherSuite != s.cs || kp.Version != s.ctx.Version {
		return fmt.Errorf("%w: suite %v version %d", ErrAddMismatch, kp.CipherSuite, kp.Version)
	}
	c := s.leafCheck(wire.LeafNodeSourceKeyPackage, l, exts)
	c.GroupID = nil
	c.SkipSignature = true // verified with the KeyPackage by checkProposal
	if err := tree.ValidateLeaf(&kp.LeafNode, c); err != nil {
		return fmt.Errorf("%w: add: %w", ErrInvalidProposalList, err)
	}
	return nil
}

// checkExtensionsSupported checks that every member supports new group
// context extensions and their required capabilities (§12.1.7). It costs
// O(n) and runs only for GroupContextExtensions proposals.
func (s *State) checkExtensionsSupported(tree *ratchettree.Tree, exts wire.Extensions) error {
	rc, err := requiredCapabilities(exts)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProposalList, err)
	}
	for _, l := range tree.LeafIndices() {
		caps := &tree.Leaf(l).Capabilities
		if l == s.own {
			caps = ownCapabilities(caps)
		}
		if m := unsupported(caps, exts, rc); m != "" {
			return fmt.Errorf("%w: member %d lacks %s", ErrUnsupportedByMembers, l, m)
		}
	}
	return nil
}

// unsupported returns the first of the group context extensions exts and
// of their required capabilities rc that caps does not support, or "".
func unsupported(caps *wire.Capabilities, exts wire.Extensions, rc *wire.RequiredCapabilities) string {
	for _, x := range exts {
		if !caps.HasExtension(x.Type) {
			return fmt.Sprintf("extension %d", x.Type)
		}
	}
	if rc == nil {
		return ""
	}
	for _, x := range rc.Extensions {
		if !caps.HasExtension(x) {
			return fmt.Sprintf("required extension %d", x)
		}
	}
	for _, p := range rc.Proposals {
		if !caps.HasProposal(p) {
			return fmt.Sprintf("required proposal %d", p)
		}
	}
	for _, ct := range rc.Credentials {
		if !caps.HasCredential(ct) {
			return fmt.Sprintf("required credential %d", ct)
		}
	}
	return ""
}
