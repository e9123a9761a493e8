package group

import (
	"bytes"
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/wire"
)

// Processed is the result of processing a message of this epoch.
type Processed struct {
	WireFormat        wire.WireFormat
	ContentType       wire.ContentType
	Sender            wire.Sender
	AuthenticatedData []byte

	// ApplicationData is set for application messages.
	ApplicationData []byte
	// Proposal and ProposalRef are set for proposals, which are cached
	// for later commits.
	Proposal    wire.Proposal
	ProposalRef []byte
	// Commit is set for commits: the staged next epoch.
	Commit *StagedCommit
}

// ProcessBytes decodes an MLSMessage and processes it.
func (s *State) ProcessBytes(data []byte) (*Processed, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("group: decoding message: %w", err)
	}
	return s.Process(&m)
}

// ProcessBytesWith decodes an MLSMessage and processes it with options.
func (s *State) ProcessBytesWith(data []byte, opts ProcessOptions) (*Processed, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("group: decoding message: %w", err)
	}
	return s.ProcessWith(&m, opts)
}

// Process authenticates a PublicMessage or PrivateMessage of this epoch
// and acts on it: application data is returned, a proposal is validated
// and cached, a commit is validated and staged (this State does not
// change; the StagedCommit holds the next epoch). A message that fails
// leaves the State as it was, message keys included.
func (s *State) Process(m *wire.MLSMessage) (*Processed, error) {
	return s.ProcessWith(m, ProcessOptions{})
}

// ProcessOptions refine Process.
type ProcessOptions struct {
	// Accept, if set, sees the authenticated sender and content type
	// before the message has any effect; an error from it rejects the
	// message and leaves the State as it was (the message key is not
	// consumed). A caller uses it for policy the RFC leaves to the
	// application, such as refusing members it knows were removed.
	Accept func(sender wire.Sender, contentType wire.ContentType) error
}

// ProcessWith is Process with options.
func (s *State) ProcessWith(m *wire.MLSMessage, opts ProcessOptions) (*Processed, error) {
	var out *Processed
	err := s.unprotect(m, func(ac *wire.AuthenticatedContent) error {
		if opts.Accept != nil {
			if err := opts.Accept(ac.Content.Sender, ac.Content.ContentType); err != nil {
				return err
			}
		}
		var err error
		out, err = s.processContent(ac)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// processContent acts on authenticated content.
func (s *State) processContent(ac *wire.AuthenticatedContent) (*Processed, error) {
	c := &ac.Content
	if s.retired && c.ContentType != wire.ContentApplication {
		return nil, fmt.Errorf("%w: handshake message for a retired epoch", ErrWrongEpoch)
	}
	out := &Processed{WireFormat: ac.WireFormat, ContentType: c.ContentType, Sender: c.Sender, AuthenticatedData: c.AuthenticatedData}
	switch c.ContentType {
	case wire.ContentApplication:
		if s.reinit != nil {
			return nil, ErrReInitPending
		}
		out.ApplicationData = c.ApplicationData
	case wire.ContentProposal:
		if err := s.checkStandaloneProposal(c.Proposal, c.Sender, ac.WireFormat); err != nil {
			return nil, err
		}
		ref := s.cs.ProposalRef(codec.MustMarshal(ac))
		if s.findProposal(ref) == nil {
			s.proposals = append(s.proposals, &cachedProposal{ref: ref, proposal: c.Proposal, sender: c.Sender})
		}
		out.Proposal, out.ProposalRef = c.Proposal, ref
	case wire.ContentCommit:
		sc, err := s.processCommit(ac)
		if err != nil {
			return nil, err
		}
		out.Commit = sc
	}
	return out, nil
}

// processCommit validates a commit from another member or an external
// joiner and stages the epoch it leads to (§12.4.2).
func (s *State) processCommit(ac *wire.AuthenticatedContent) (*StagedCommit, error) {
	if s.reinit != nil {
		return nil, ErrReInitPending
	}
	c := ac.Content.Commit
	committer := ac.Content.Sender
	external := committer.Type == wire.SenderNewMemberCommit
	if committer.Type != wire.SenderMember && !external {
		return nil, fmt.Errorf("%w: commit from sender type %d", ErrInvalidSenderType, committer.Type)
	}
	if external && c.Path == nil {
		return nil, ErrPathRequired
	}
	list, err := s.resolveProposals(committer, c.Proposals)
	if err != nil {
		return nil, err
	}
	if external {
		if err := s.checkExternalCommit(list, &c.Path.LeafNode); err != nil {
			return nil, err
		}
	}
	for _, cp := range list {
		if cp.ref != nil {
			continue // validated when received
		}
		if err := s.checkProposal(cp.proposal, committer); err != nil {
			return nil, err
		}
	}
	pv, err := s.applyProposals(list, committer, external, false)
	if err != nil {
		return nil, err
	}
	if pv.pathRequired && c.Path == nil {
		return nil, ErrPathRequired
	}
	tree := pv.tree
	priv := s.priv.Clone()
	if pv.ownUpdateKey != nil {
		priv.Set(s.own.Node(), pv.ownUpdateKey)
	}
	// Removed, even if an Add of the same commit reuses the leaf slot.
	selfRemoved := tree.Leaf(s.own) == nil
	for _, r := range pv.removed {
		selfRemoved = selfRemoved || r == s.own
	}
	commitSecret := keyschedule.Zero(s.cs)
	if c.Path != nil {
		sender := LeafIndex(committer.Index)
		if external {
			sender = tree.NextFreeLeaf()
		}
		if err := s.checkPathKeys(tree, sender, c.Path, external, pv); err != nil {
			return nil, err
		}
		if external {
			leaf := c.Path.LeafNode
			tree.AddLeaf(&leaf)
		}
		if err := tree.MergeUpdatePath(sender, c.Path); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
		if !selfRemoved {
			provisional := s.provisionalContext(tree, pv.exts)
			commitSecret, err = priv.DecryptPath(tree, sender, c.Path, provisional, leafSet(pv.added))
			if err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
			}
		}
	}
	if selfRemoved {
		// Without a place in the new tree this member cannot derive the
		// new epoch; it learns only that it was removed.
		sc := s.staged(pv, list, committer, c.Path != nil, nil)
		sc.SelfRemoved = true
		return sc, nil
	}
	initSecret := s.secrets.InitSecret
	if external {
		if pv.externalInit == nil { // excluded by checkExternalCommit
			return nil, fmt.Errorf("%w: external commit without external_init", ErrInvalidCommit)
		}
		ext, err := s.secrets.ExternalKey()
		if err != nil {
			return nil, err
		}
		initSecret, err = s.cs.ExternalInitSecret(ext, pv.externalInit.KEMOutput)
		ext.Destroy()
		if err != nil {
			return nil, fmt.Errorf("%w: external init: %w", ErrInvalidCommit, err)
		}
		defer clear(initSecret)
	}
	if !priv.Prune(tree) {
		return nil, fmt.Errorf("%w: own leaf key lost", ErrInvalidCommit)
	}
	next, epoch, err := s.nextEpoch(pv, ac, commitSecret, initSecret, ac.Auth.ConfirmationTag, s.own, priv, s.signer)
	if err != nil {
		return nil, err
	}
	epoch.ForgetJoinerSecrets()
	return s.staged(pv, list, committer, c.Path != nil, next), nil
}

// checkPathKeys validates the new leaf of an UpdatePath and checks that
// none of its keys is already in the tree (§12.4.2).
func (s *State) checkPathKeys(tree *ratchettree.Tree, sender LeafIndex, up *wire.UpdatePath, external bool, pv *provisional) error {
	check := s.leafCheck(wire.LeafNodeSourceCommit, sender, pv.exts)
	if external {
		check.Replaces = false // a new leaf, not a replacement
	} else if old := tree.Leaf(sender); old == nil {
		return ErrCommitterBlank
	} else if bytes.Equal(old.EncryptionKey, up.LeafNode.EncryptionKey) {
		return ErrCommitterKeyReused
	}
	if err := tree.ValidateLeaf(&up.LeafNode, check); err != nil {
		return fmt.Errorf("%w: %w", ErrCommitterLeaf, err)
	}
	seen := map[string]bool{string(up.LeafNode.EncryptionKey): true}
	for i := range up.Nodes {
		k := up.Nodes[i].EncryptionKey
		if _, dup := tree.FindEncryptionKey(k); dup || seen[string(k)] {
			return fmt.Errorf("%w: node %d of the path", ErrPathKeyInTree, i)
		}
		seen[string(k)] = true
		if err := s.cs.ValidateHPKEPublicKey(k); err != nil {
			return fmt.Errorf("%w: path key %d: %w", ErrInvalidCommit, i, err)
		}
	}
	return nil
}
