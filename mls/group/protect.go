package group

import (
	"fmt"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/wire"
)

// newContent returns FramedContent from this member in this epoch.
func (s *State) newContent(ct wire.ContentType, authenticatedData []byte) wire.FramedContent {
	return wire.FramedContent{
		GroupID:           s.ctx.GroupID,
		Epoch:             s.ctx.Epoch,
		Sender:            wire.MemberSender(uint32(s.own)),
		AuthenticatedData: authenticatedData,
		ContentType:       ct,
	}
}

func wireFormat(encrypt bool) wire.WireFormat {
	if encrypt {
		return wire.WireFormatPrivateMessage
	}
	return wire.WireFormatPublicMessage
}

// frame wraps signed content in a PublicMessage or PrivateMessage of this
// epoch.
func (s *State) frame(content *wire.FramedContent, auth *wire.FramedContentAuthData, encrypt bool) (*wire.MLSMessage, error) {
	if encrypt {
		pm, err := framing.EncryptPrivateMessage(s.keys, content, auth, s.cfg.padding(), s.cfg.rand())
		if err != nil {
			return nil, err
		}
		return wire.NewMLSMessage(pm), nil
	}
	pm, err := framing.NewPublicMessage(s.cs, content, auth, s.secrets.MembershipKey, s.ctxEnc)
	if err != nil {
		return nil, err
	}
	return wire.NewMLSMessage(pm), nil
}

// canSend reports whether this member may send in this epoch.
func (s *State) canSend() error {
	if s.retired || s.tree.Leaf(s.own) == nil || s.priv == nil {
		return ErrNotMember
	}
	return nil
}

// EncryptApplication protects application data as a PrivateMessage
// (§6.3) and returns the encoded MLSMessage.
func (s *State) EncryptApplication(data, authenticatedData []byte) ([]byte, error) {
	if err := s.canSend(); err != nil {
		return nil, err
	}
	if s.reinit != nil {
		return nil, ErrReInitPending
	}
	content := s.newContent(wire.ContentApplication, authenticatedData)
	content.ApplicationData = data
	sig, err := framing.Sign(s.cs, s.signer, wire.WireFormatPrivateMessage, &content, s.ctxEnc, s.cfg.rand())
	if err != nil {
		return nil, err
	}
	m, err := s.frame(&content, &wire.FramedContentAuthData{Signature: sig}, true)
	if err != nil {
		return nil, err
	}
	return codec.Marshal(m)
}

// Propose sends a proposal (§12.1) and caches it so that a later commit can
// include it by reference. It returns the encoded MLSMessage and the
// ProposalRef. An Update proposal's new leaf is made here from the
// member's current leaf: pass an *wire.Update whose LeafNode is zero to
// take the defaults, or a template whose encryption key and signature are
// set here. A SelfRemove must not be encrypted; ProposeSelfRemove sends one.
func (s *State) Propose(p wire.Proposal, encrypt bool, authenticatedData []byte) (msg, ref []byte, err error) {
	if err := s.canSend(); err != nil {
		return nil, nil, err
	}
	if s.reinit != nil {
		return nil, nil, ErrReInitPending
	}
	cp := &cachedProposal{sender: wire.MemberSender(uint32(s.own))}
	if u, ok := p.(*wire.Update); ok {
		leaf := u.LeafNode
		if leaf.SignatureKey == nil {
			leaf = *s.tree.Leaf(s.own)
		}
		key, err := s.cs.GenerateHPKEKey(s.cfg.rand())
		if err != nil {
			return nil, nil, err
		}
		leaf.EncryptionKey = key.PublicKey()
		leaf.Source = wire.LeafNodeSourceUpdate
		leaf.Lifetime, leaf.ParentHash = wire.Lifetime{}, nil
		if err := leaf.Sign(s.cs, s.signer, s.ctx.GroupID, uint32(s.own)); err != nil {
			return nil, nil, err
		}
		p = &wire.Update{LeafNode: leaf}
		cp.updateKey = key
	}
	if err := s.checkStandaloneProposal(p, cp.sender, wireFormat(encrypt)); err != nil {
		return nil, nil, err
	}
	if _, ok := p.(*wire.SelfRemove); ok {
		if err := s.canSelfRemove(); err != nil {
			return nil, nil, err
		}
	}
	cp.proposal = p
	content := s.newContent(wire.ContentProposal, authenticatedData)
	content.Proposal = p
	wf := wireFormat(encrypt)
	sig, err := framing.Sign(s.cs, s.signer, wf, &content, s.ctxEnc, s.cfg.rand())
	if err != nil {
		return nil, nil, err
	}
	auth := wire.FramedContentAuthData{Signature: sig}
	ac := wire.AuthenticatedContent{WireFormat: wf, Content: content, Auth: auth}
	cp.ref = s.cs.ProposalRef(codec.MustMarshal(&ac))
	m, err := s.frame(&content, &auth, encrypt)
	if err != nil {
		return nil, nil, err
	}
	enc, err := codec.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	s.proposals = append(s.proposals, cp)
	return enc, cp.ref, nil
}

// unprotect authenticates a Public or PrivateMessage of this epoch (group
// and epoch, membership tag or decryption, sender, and signature) and
// passes its content to handle. For a PrivateMessage the sender's key is
// consumed only if handle succeeds too, so a message rejected for its
// content can be processed again later (a commit whose proposals arrive
// after it) and a bad one changes nothing.
func (s *State) unprotect(m *wire.MLSMessage, handle func(*wire.AuthenticatedContent) error) error {
	switch m.WireFormat {
	case wire.WireFormatPublicMessage:
		if s.retired {
			return fmt.Errorf("%w: handshake message for a retired epoch", ErrWrongEpoch)
		}
		ac, err := s.unprotectPublic(m.PublicMessage)
		if err != nil {
			return err
		}
		return handle(ac)
	case wire.WireFormatPrivateMessage:
		return s.unprotectPrivate(m.PrivateMessage, handle)
	}
	return fmt.Errorf("%w: wire format %d", ErrUnsupportedMessage, m.WireFormat)
}

func (s *State) checkGroupEpoch(groupID []byte, epoch uint64) error {
	if string(groupID) != string(s.ctx.GroupID) {
		return ErrWrongGroup
	}
	if epoch != s.ctx.Epoch {
		return fmt.Errorf("%w: message epoch %d, state epoch %d", ErrWrongEpoch, epoch, s.ctx.Epoch)
	}
	return nil
}

// memberKey returns the signature key of the member at leaf.
func (s *State) memberKey(leaf uint32) ([]byte, error) {
	if leaf == uint32(s.own) {
		return nil, ErrOwnMessage
	}
	l := s.tree.Leaf(LeafIndex(leaf))
	if l == nil {
		return nil, fmt.Errorf("%w: leaf %d", ErrUnknownSender, leaf)
	}
	return l.SignatureKey, nil
}

func (s *State) unprotectPublic(pm *wire.PublicMessage) (*wire.AuthenticatedContent, error) {
	c := &pm.Content
	if err := s.checkGroupEpoch(c.GroupID, c.Epoch); err != nil {
		return nil, err
	}
	if c.ContentType == wire.ContentApplication {
		return nil, ErrApplicationInPublic
	}
	var key []byte
	switch c.Sender.Type {
	case wire.SenderMember:
		k, err := s.memberKey(c.Sender.Index)
		if err != nil {
			return nil, err
		}
		if err := framing.VerifyMembershipTag(s.cs, pm, s.secrets.MembershipKey, s.ctxEnc); err != nil {
			return nil, err
		}
		key = k
	case wire.SenderExternal:
		if c.ContentType != wire.ContentProposal {
			return nil, fmt.Errorf("%w: external sender of a %v", ErrInvalidSenderType, c.ContentType)
		}
		es, err := externalSenders(s.ctx.Extensions)
		if err != nil {
			return nil, err
		}
		if int(c.Sender.Index) >= len(es) {
			return nil, fmt.Errorf("%w: external sender %d", ErrUnknownSender, c.Sender.Index)
		}
		key = es[c.Sender.Index].SignatureKey
	case wire.SenderNewMemberProposal:
		add, ok := c.Proposal.(*wire.Add)
		if c.ContentType != wire.ContentProposal || !ok {
			return nil, fmt.Errorf("%w: new_member_proposal must carry an Add", ErrInvalidSenderType)
		}
		key = add.KeyPackage.LeafNode.SignatureKey
	case wire.SenderNewMemberCommit:
		if c.ContentType != wire.ContentCommit {
			return nil, fmt.Errorf("%w: new_member_commit must carry a commit", ErrInvalidSenderType)
		}
		// Its signature key is that of the path's leaf (§12.4.3.2).
		if c.Commit.Path == nil {
			return nil, fmt.Errorf("%w: external commit", ErrPathRequired)
		}
		key = c.Commit.Path.LeafNode.SignatureKey
	default:
		return nil, fmt.Errorf("%w: sender type %d", ErrInvalidSenderType, c.Sender.Type)
	}
	ac := framing.AuthenticatedContentOf(pm)
	if err := framing.VerifySignature(s.cs, key, ac, s.ctxEnc); err != nil {
		return nil, ErrBadSignature
	}
	return ac, nil
}

func (s *State) unprotectPrivate(pm *wire.PrivateMessage, handle func(*wire.AuthenticatedContent) error) error {
	if err := s.checkGroupEpoch(pm.GroupID, pm.Epoch); err != nil {
		return err
	}
	var key []byte
	_, err := framing.DecryptPrivateMessage(s.keys, pm, func(leaf uint32) error {
		k, err := s.memberKey(leaf)
		key = k
		return err
	}, func(ac *wire.AuthenticatedContent) error {
		if err := framing.VerifySignature(s.cs, key, ac, s.ctxEnc); err != nil {
			return ErrBadSignature
		}
		return handle(ac)
	})
	return err
}
