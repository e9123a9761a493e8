package group

import (
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/wire"
)

// SelfRemove, as draft-ietf-mls-extensions-09 ("SelfRemove Proposal", and
// its IANA entry: External N, Path Required Y) defines it; the editor's
// copy after -09 (mlswg/mls-extensions 589d7f9) leaves the section as it
// is. Its proposal type is the draft's suggested value 0x000a, as OpenMLS
// has it (mls-rs uses the private-use value 0xF003 behind a feature flag,
// so the two do not interoperate on it). The rules, and where they live:
//
//   - It is an empty proposal a member sends to be removed, in a
//     PublicMessage ("MUST be sent in an MLS PublicMessage", so that an
//     external joiner can read it): Propose and Process refuse it in a
//     PrivateMessage (ErrSelfRemoveEncrypted). It "cannot be sent as an
//     external proposal": external and new_member_proposal senders are
//     refused (ErrInvalidSenderType).
//   - "A client MUST NOT issue more than one SelfRemove proposal per
//     epoch": Propose refuses a second (ErrSelfRemoveSent). A receiver
//     caches both (members may see different ones first); a commit holds
//     at most one, as it changes a leaf once.
//   - It is committed "only ... by reference" (ErrSelfRemoveByValue), and
//     treated "like a Remove Proposal, except the leaf node to remove is
//     determined by ... the Sender leaf_index of the original Proposal":
//     the committer cannot commit its own (ErrCommitterRemoved, §12.2);
//     another Update, Remove or SelfRemove of the same leaf in the list is
//     refused (ErrDuplicateLeafChange, §12.2; "If there is a pending
//     SelfRemove proposal for a specific leaf node and a pending Remove
//     proposal for the same leaf node, the Remove proposal is invalid",
//     so a committer gathering pending proposals takes the SelfRemove and
//     leaves the Remove and any Update of that leaf out); the commit needs
//     a path (ErrPathRequired). SelfRemoves are applied after Updates and
//     before Removes.
//   - The behaviour applies in a "self-remove-capable group", one where
//     every member lists self_remove in its capabilities. A member
//     proposes one only there (ErrSelfRemoveUnsupported), and a commit
//     holding one must be supported by every member that processes it
//     (§12.2: members it removes or adds need not; ErrUnsupportedByMembers).
//   - "It is allowed in external Commits": the joiner "MUST fetch any
//     pending SelfRemove Proposals along with the GroupInfo object, and
//     include [them] in its external Commit by reference", validating them
//     but for the membership_tag (ExternalJoinOptions.SelfRemoves). Members
//     accept references in an external commit to SelfRemoves only
//     (ErrExternalCommitRef). That the joiner included every pending one is
//     the joiner's duty; a member cannot tell what the joiner was given,
//     and members of a group without a server may hold different pending
//     sets, so it does not refuse an external commit for leaving one out.
//   - A ReInit is alone in its commit (§12.2) and so never beside a
//     SelfRemove; PreSharedKeys are unaffected.

// ProposeSelfRemove asks the other members to remove this member: it sends
// a SelfRemove proposal as a PublicMessage, caches it, and returns the
// encoded MLSMessage and its ProposalRef. Any other member (or an external
// joiner) commits it by reference; a commit that does is processed here as
// any commit that removes this member: its StagedCommit has SelfRemoved set
// and no State. It fails with ErrSelfRemoveUnsupported in a group where
// some member does not support self_remove (send a Remove proposal of
// OwnLeaf instead), and with ErrSelfRemoveSent if this member already sent
// one in this epoch.
func (s *State) ProposeSelfRemove(authenticatedData []byte) (msg, ref []byte, err error) {
	return s.Propose(&wire.SelfRemove{}, false, authenticatedData)
}

// SelfRemoveCapable reports whether every member lists self_remove in its
// capabilities, so that a member may leave with ProposeSelfRemove.
func (s *State) SelfRemoveCapable() bool {
	_, lacking := selfRemoveUnsupported(s.tree, nil)
	return !lacking
}

// canSelfRemove checks that this member may send a SelfRemove now.
func (s *State) canSelfRemove() error {
	me := wire.MemberSender(uint32(s.own))
	for _, cp := range s.proposals {
		if _, ok := cp.proposal.(*wire.SelfRemove); ok && cp.sender == me {
			return ErrSelfRemoveSent
		}
	}
	if l, lacking := selfRemoveUnsupported(s.tree, nil); lacking {
		return fmt.Errorf("%w: member %d", ErrSelfRemoveUnsupported, l)
	}
	return nil
}

// selfRemoveUnsupported returns a member of tree, other than those in
// removed, whose capabilities lack self_remove. It costs O(n).
func selfRemoveUnsupported(tree *ratchettree.Tree, removed map[uint32]bool) (LeafIndex, bool) {
	for _, l := range tree.LeafIndices() {
		if removed[uint32(l)] {
			continue
		}
		if !tree.Leaf(l).Capabilities.HasProposal(wire.ProposalSelfRemove) {
			return l, true
		}
	}
	return 0, false
}

// pendingSelfRemoves verifies the SelfRemove proposals an external joiner
// was given with the GroupInfo that s stands for, and returns them as
// references, one per member.
func (s *State) pendingSelfRemoves(msgs [][]byte) ([]committedProposal, error) {
	var out []committedProposal
	seen := map[uint32]bool{}
	for i, data := range msgs {
		cp, err := s.verifySelfRemove(data)
		if err != nil {
			return nil, fmt.Errorf("self_remove %d: %w", i, err)
		}
		if seen[cp.sender.Index] {
			continue // a member's second one, or the same one again
		}
		seen[cp.sender.Index] = true
		out = append(out, *cp)
	}
	return out, nil
}

// verifySelfRemove checks one encoded SelfRemove proposal as a member
// would, except for its membership_tag, which a non-member cannot verify.
func (s *State) verifySelfRemove(data []byte) (*committedProposal, error) {
	var m wire.MLSMessage
	if err := codec.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	if m.WireFormat != wire.WireFormatPublicMessage {
		return nil, ErrSelfRemoveEncrypted
	}
	pm := m.PublicMessage
	c := &pm.Content
	if err := s.checkGroupEpoch(c.GroupID, c.Epoch); err != nil {
		return nil, err
	}
	if _, ok := c.Proposal.(*wire.SelfRemove); c.ContentType != wire.ContentProposal || !ok {
		return nil, fmt.Errorf("%w: not a self_remove proposal", ErrInvalidProposal)
	}
	if c.Sender.Type != wire.SenderMember {
		return nil, fmt.Errorf("%w: self_remove from sender type %d", ErrInvalidSenderType, c.Sender.Type)
	}
	leaf := s.tree.Leaf(LeafIndex(c.Sender.Index))
	if leaf == nil {
		return nil, fmt.Errorf("%w: leaf %d", ErrUnknownSender, c.Sender.Index)
	}
	ac := framing.AuthenticatedContentOf(pm)
	if err := framing.VerifySignature(s.cs, leaf.SignatureKey, ac, s.ctxEnc); err != nil {
		return nil, ErrBadSignature
	}
	return &committedProposal{proposal: c.Proposal, sender: c.Sender, ref: s.cs.ProposalRef(codec.MustMarshal(ac))}, nil
}
