package group

import (
	"bytes"
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// ExternalJoinOptions shape an external commit.
type ExternalJoinOptions struct {
	// Tree is the group's ratchet tree, for GroupInfos without the
	// ratchet_tree extension.
	Tree wire.RatchetTree
	// Credential and Capabilities describe the joiner's new leaf
	// (Capabilities defaults to DefaultCapabilities).
	Credential     wire.Credential
	Capabilities   *wire.Capabilities
	LeafExtensions wire.Extensions
	// Resync removes the joiner's old appearance at this leaf, whose
	// credential must stand for the same client as Credential
	// (Config.SameClient); JoinExternal refuses any other leaf with
	// ErrExternalRemove, as every member would.
	Resync *LeafIndex
	// PSKs are injected with PreSharedKey proposals.
	PSKs []wire.PreSharedKeyID
	// SelfRemoves are the encoded MLSMessages of the SelfRemove proposals
	// pending in the GroupInfo's epoch, which a joiner "MUST fetch ...
	// along with the GroupInfo object, and include ... by reference"
	// (draft-ietf-mls-extensions-09). JoinExternal verifies each as a
	// member would, except for its membership_tag, and refuses the join
	// if one is invalid; a second one from the same member is left out.
	SelfRemoves       [][]byte
	AuthenticatedData []byte
	// GroupInfo, when set, asks for a GroupInfo of the new epoch.
	GroupInfo *GroupInfoOptions

	// tamper, in tests only, changes the proposal list after it is built;
	// the rules of checkExternalCommit are then not applied, so that a
	// test can make an otherwise consistent external commit that breaks
	// one of them.
	tamper func([]committedProposal) []committedProposal
}

// JoinExternal joins a group by external commit (§12.4.3.2) from a GroupInfo
// with an external_pub extension. It returns the commit to send and the
// joiner's State in the new epoch.
func JoinExternal(cfg *Config, gi *wire.GroupInfo, signer *suite.SignaturePrivateKey, opts ExternalJoinOptions) (*StagedCommit, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	cs := gi.GroupContext.CipherSuite
	if err := cs.Check(); err != nil {
		return nil, err
	}
	if signer.Suite() != cs {
		return nil, fmt.Errorf("%w: signer of suite %v", ErrInvalidGroupInfo, signer.Suite())
	}
	tree, err := verifiedTree(cfg, gi, opts.Tree)
	if err != nil {
		return nil, err
	}
	data, ok := gi.Extensions.Find(wire.ExtensionExternalPub)
	if !ok {
		return nil, fmt.Errorf("%w: no external_pub", ErrInvalidGroupInfo)
	}
	var ep wire.ExternalPub
	if err := codec.Unmarshal(data, &ep); err != nil {
		return nil, fmt.Errorf("%w: external_pub: %w", ErrInvalidGroupInfo, err)
	}
	kemOutput, initSecret, err := cs.ExternalInit(ep.PublicKey, cfg.rand())
	if err != nil {
		return nil, fmt.Errorf("%w: external init: %w", ErrInvalidGroupInfo, err)
	}
	defer clear(initSecret)

	// base stands for the group's current epoch as the joiner sees it.
	base, err := groupInfoState(cfg, gi, tree)
	if err != nil {
		return nil, err
	}
	caps := DefaultCapabilities()
	if opts.Capabilities != nil {
		caps = *opts.Capabilities
	}
	template := wire.LeafNode{
		SignatureKey: signer.PublicKey(),
		Credential:   opts.Credential,
		Capabilities: caps,
		Source:       wire.LeafNodeSourceCommit,
		Extensions:   opts.LeafExtensions,
	}
	if cfg.Grease {
		g := &greaser{r: cfg.rand()}
		g.leaf(&template)
		if err := g.failed(); err != nil {
			return nil, err
		}
	}
	me := wire.Sender{Type: wire.SenderNewMemberCommit}
	list := []committedProposal{{proposal: &wire.ExternalInit{KEMOutput: kemOutput}, sender: me}}
	if opts.Resync != nil {
		list = append(list, committedProposal{proposal: &wire.Remove{Removed: uint32(*opts.Resync)}, sender: me})
	}
	for _, id := range opts.PSKs {
		list = append(list, committedProposal{proposal: &wire.PreSharedKey{PSK: id}, sender: me})
	}
	selfRemoves, err := base.pendingSelfRemoves(opts.SelfRemoves)
	if err != nil {
		return nil, err
	}
	list = append(list, selfRemoves...)
	if opts.tamper != nil {
		list = opts.tamper(list)
	} else if err := base.checkExternalCommit(list, &template); err != nil {
		return nil, err
	}
	for _, cp := range list {
		if cp.ref != nil {
			continue // validated when received
		}
		if err := base.checkProposal(cp.proposal, cp.sender); err != nil {
			return nil, err
		}
	}
	pv, err := base.applyProposals(list, me, true, false)
	if err != nil {
		return nil, err
	}
	tree = pv.tree
	own := tree.NextFreeLeaf()
	placeholder := template
	tree.AddLeaf(&placeholder)
	path, err := tree.ApplyOwnPath(own, template, signer, gi.GroupContext.GroupID, cfg.rand())
	if err != nil {
		return nil, err
	}
	defer path.Destroy()
	if err := tree.ValidateLeaf(path.LeafNode, base.leafCheck(wire.LeafNodeSourceCommit, own, pv.exts)); err != nil {
		return nil, fmt.Errorf("%w: own leaf: %w", ErrInvalidCommit, err)
	}
	up, err := tree.EncryptPath(path, base.provisionalContext(tree, pv.exts), nil, cfg.rand())
	if err != nil {
		return nil, err
	}
	priv := ratchettree.NewPrivateKeys(own, path.LeafKey)
	for i, x := range path.Nodes {
		priv.Set(x, path.NodeKeys[i])
	}
	content := wire.FramedContent{
		GroupID:           gi.GroupContext.GroupID,
		Epoch:             gi.GroupContext.Epoch,
		Sender:            me,
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       wire.ContentCommit,
		Commit:            &wire.Commit{Proposals: proposalRefs(list), Path: up},
	}
	sig, err := framing.Sign(cs, signer, wire.WireFormatPublicMessage, &content, base.ctxEnc, cfg.rand())
	if err != nil {
		return nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: content, Auth: wire.FramedContentAuthData{Signature: sig}}
	next, epoch, err := base.nextEpoch(pv, ac, path.CommitSecret, initSecret, nil, own, priv, signer)
	if err != nil {
		return nil, err
	}
	epoch.ForgetJoinerSecrets()
	pm, err := framing.NewPublicMessage(cs, &content, &ac.Auth, nil, base.ctxEnc)
	if err != nil {
		return nil, err
	}
	enc, err := codec.Marshal(wire.NewMLSMessage(pm))
	if err != nil {
		return nil, err
	}
	sc := base.staged(pv, list, me, true, next)
	sc.Message = enc
	if opts.GroupInfo != nil {
		if sc.GroupInfo, err = next.GroupInfo(*opts.GroupInfo); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// checkExternalCommit applies the rules of §12.2 and §12.4.3.2 that only
// external commits have to their (resolved) proposal list, for the
// joiner's new leaf (the leaf_node of the commit's path): every proposal is
// inline but SelfRemoves, which are by reference only
// (draft-ietf-mls-extensions-09 lifts §12.4.3.2's ban on references for
// them alone); it holds exactly one ExternalInit, at most one Remove, any
// PreSharedKeys and SelfRemoves and nothing else; and a Remove is a resync,
// replacing the joiner's own old leaf. The new leaf must then meet the
// criteria of an Update of the removed leaf (§12.1.2, §7.3, §5.3.1): its
// credential stands for the same client (Config.SameClient) and its
// encryption key is a new one. The other criteria (a valid credential and
// capabilities, unique keys) are those of every commit leaf, checked with
// the path.
func (s *State) checkExternalCommit(list []committedProposal, leaf *wire.LeafNode) error {
	var inits, removes int
	var remove *wire.Remove
	for _, cp := range list {
		if _, ok := cp.proposal.(*wire.SelfRemove); ok {
			continue // by reference only, as in any commit (applyProposals)
		}
		if cp.ref != nil {
			return fmt.Errorf("%w: %v", ErrExternalCommitRef, cp.proposal.ProposalType())
		}
		switch p := cp.proposal.(type) {
		case *wire.ExternalInit:
			inits++
		case *wire.Remove:
			removes++
			remove = p
		case *wire.PreSharedKey:
		default:
			return fmt.Errorf("%w: %v", ErrExternalCommitProposal, p.ProposalType())
		}
	}
	if inits != 1 {
		return fmt.Errorf("%w: %d", ErrExternalInitCount, inits)
	}
	if removes > 1 {
		return fmt.Errorf("%w: %d", ErrExternalCommitRemoves, removes)
	}
	if remove == nil {
		return nil
	}
	old := s.tree.Leaf(LeafIndex(remove.Removed))
	if old == nil {
		return fmt.Errorf("%w: leaf %d", ErrRemoveUnknownMember, remove.Removed)
	}
	if !s.cfg.sameClient(&old.Credential, &leaf.Credential) {
		return fmt.Errorf("%w: leaf %d", ErrExternalRemove, remove.Removed)
	}
	if bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
		return fmt.Errorf("%w: the resync keeps leaf %d's key", ErrCommitterKeyReused, remove.Removed)
	}
	return nil
}

// groupInfoState builds the public part of a group's state from a verified
// GroupInfo: enough to validate and apply proposals and run the key
// schedule of a commit, but holding no secrets.
func groupInfoState(cfg *Config, gi *wire.GroupInfo, tree *ratchettree.Tree) (*State, error) {
	ctxEnc, err := codec.Marshal(&gi.GroupContext)
	if err != nil {
		return nil, err
	}
	cs := gi.GroupContext.CipherSuite
	return &State{
		cfg:                   cfg,
		cs:                    cs,
		ctx:                   gi.GroupContext,
		ctxEnc:                ctxEnc,
		tree:                  tree,
		own:                   LeafIndex(^uint32(0)),
		confirmationTag:       gi.ConfirmationTag,
		interimTranscriptHash: framing.InterimTranscriptHash(cs, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag),
	}, nil
}

// NewMemberAddProposal makes an Add proposal in which a would-be member
// proposes its own KeyPackage (sender type new_member_proposal, §12.1.8),
// for the given group and epoch. It returns the encoded MLSMessage.
func NewMemberAddProposal(groupID []byte, epoch uint64, bundle *KeyPackageBundle, authenticatedData []byte) ([]byte, error) {
	content := wire.FramedContent{
		GroupID:           groupID,
		Epoch:             epoch,
		Sender:            wire.Sender{Type: wire.SenderNewMemberProposal},
		AuthenticatedData: authenticatedData,
		ContentType:       wire.ContentProposal,
		Proposal:          &wire.Add{KeyPackage: *bundle.KeyPackage},
	}
	return externalPublicMessage(bundle.KeyPackage.CipherSuite, bundle.Signer, &content)
}

// ExternalProposal makes a proposal from an external sender listed at
// senderIndex in the group's external_senders extension (§12.1.8.1).
func ExternalProposal(cs suite.CipherSuite, groupID []byte, epoch uint64, senderIndex uint32, signer *suite.SignaturePrivateKey, p wire.Proposal, authenticatedData []byte) ([]byte, error) {
	if !canSendExternally(p.ProposalType()) {
		return nil, fmt.Errorf("%w: %v proposal from an external sender", ErrInvalidSenderType, p.ProposalType())
	}
	content := wire.FramedContent{
		GroupID:           groupID,
		Epoch:             epoch,
		Sender:            wire.Sender{Type: wire.SenderExternal, Index: senderIndex},
		AuthenticatedData: authenticatedData,
		ContentType:       wire.ContentProposal,
		Proposal:          p,
	}
	return externalPublicMessage(cs, signer, &content)
}

func externalPublicMessage(cs suite.CipherSuite, signer *suite.SignaturePrivateKey, content *wire.FramedContent) ([]byte, error) {
	sig, err := framing.Sign(cs, signer, wire.WireFormatPublicMessage, content, nil, nil)
	if err != nil {
		return nil, err
	}
	pm, err := framing.NewPublicMessage(cs, content, &wire.FramedContentAuthData{Signature: sig}, nil, nil)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(wire.NewMLSMessage(pm))
}
