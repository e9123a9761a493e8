package group

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// StagedCommit is a commit that has been created or validated but not
// adopted: State is the epoch it leads to. Adopting it is using State;
// dropping it is calling Discard. Several StagedCommits made on the same
// epoch can coexist.
type StagedCommit struct {
	// State is the new epoch, nil when the commit removed this member.
	State *State
	// Message is the encoded MLSMessage of a commit this member created.
	Message []byte
	// Welcome invites the members the commit added (commits created here).
	Welcome *wire.Welcome
	// GroupInfo describes the new epoch, when requested.
	GroupInfo *wire.GroupInfo

	Committer wire.Sender
	Proposals []AppliedProposal
	Added     []LeafIndex
	// Removed lists the leaves that Remove and SelfRemove proposals
	// removed.
	Removed []LeafIndex
	Updated []LeafIndex
	HasPath bool
	ReInit  *wire.ReInit
	// SelfRemoved is set, and State nil, when the commit removed this
	// member (by a Remove or by its own SelfRemove).
	SelfRemoved bool
	// ConfirmationTag is the commit's confirmation tag; with the epoch it
	// identifies the commit among its siblings.
	ConfirmationTag []byte
}

// Discard deletes the secrets of the staged epoch. The StagedCommit must
// not be used afterwards.
func (c *StagedCommit) Discard() {
	if c.State != nil {
		c.State.Destroy()
		c.State = nil
	}
}

// CommitOptions shape a commit made by this member.
type CommitOptions struct {
	// Proposals are included by value, in order, before references.
	Proposals []wire.Proposal
	// ByReference lists ProposalRefs of cached proposals to include.
	ByReference [][]byte
	// IncludePending includes by reference every cached proposal not
	// already listed that keeps the list valid (§12.4 SHOULD).
	IncludePending bool
	// MaxPendingPerSender, if positive, bounds the cached proposals of
	// any one sender that IncludePending includes: the first that many
	// in the order of addPending. The committer chooses what it commits
	// (§12.4), and what it leaves out is discarded with the epoch; so a
	// member that floods an epoch with proposals makes a commit no
	// larger, and its list no slower to check, than that many would.
	MaxPendingPerSender int
	// ForcePath includes an UpdatePath even where none is required.
	ForcePath bool
	// Encrypt sends the commit as a PrivateMessage.
	Encrypt           bool
	AuthenticatedData []byte
	// LeafNode, when set, is the template of this member's new leaf in
	// the UpdatePath (for new capabilities, extensions or credential).
	LeafNode *wire.LeafNode
	// Signer, when set, replaces this member's signature key from the new
	// epoch on (its public key must be the template's signature key).
	Signer *suite.SignaturePrivateKey
	// WelcomeWithTree puts the ratchet tree in the Welcome's GroupInfo.
	WelcomeWithTree bool
	// GroupInfo, when set, asks for a GroupInfo of the new epoch.
	GroupInfo *GroupInfoOptions
	// WelcomeExternalPub adds external_pub to the Welcome's GroupInfo.
	WelcomeExternalPub bool

	// allowResumptionPSK permits reinit and branch PSKs (own first commit
	// of a reinitialized or branched group), taken from resumed.
	allowResumptionPSK bool
	resumed            *State
	// tamper, in tests only, changes the commit after it is built and
	// before it is signed, to make commits that break one rule.
	tamper func(*wire.Commit)
}

// pathRequiredFor reports whether a list needs a path.
func proposalRefs(list []committedProposal) []wire.ProposalOrRef {
	out := make([]wire.ProposalOrRef, len(list))
	for i, cp := range list {
		if cp.ref != nil {
			out[i] = wire.ProposalOrRef{Reference: cp.ref}
		} else {
			out[i] = wire.ProposalOrRef{Proposal: cp.proposal}
		}
	}
	return out
}

// Commit creates a commit (§12.4.1) and stages it: the returned
// StagedCommit holds the message to send, the Welcome for added members,
// and the next epoch's State. This State is not changed, except that a
// PrivateMessage commit uses a key of its handshake ratchet.
func (s *State) Commit(opts CommitOptions) (*StagedCommit, error) {
	if err := s.canSend(); err != nil {
		return nil, err
	}
	if s.reinit != nil {
		return nil, ErrReInitPending
	}
	me := wire.MemberSender(uint32(s.own))
	var list []committedProposal
	for _, p := range opts.Proposals {
		if err := s.checkProposal(p, me); err != nil {
			if !(opts.allowResumptionPSK && isResumptionPSK(p)) {
				return nil, err
			}
		}
		list = append(list, committedProposal{proposal: p, sender: me})
	}
	for _, ref := range opts.ByReference {
		cp := s.findProposal(ref)
		if cp == nil {
			return nil, fmt.Errorf("%w: %x", ErrUnknownProposal, ref)
		}
		list = append(list, committedProposal{proposal: cp.proposal, sender: cp.sender, ref: cp.ref, updateKey: cp.updateKey})
	}
	chosen := len(list)
	if opts.IncludePending {
		list = s.addPending(list, me, opts.MaxPendingPerSender)
	}
	pv, err := s.applyProposals(list, me, false, opts.allowResumptionPSK)
	if err != nil && len(list) > chosen {
		// A cached proposal the list rules of addPending do not see may
		// make the list invalid with the tree or with another proposal
		// (§12.2: an Add of a client already in the group, two Adds of
		// one client): an invalid proposal is not committed, so keep the
		// cached proposals that leave the list valid, one at a time.
		list, pv, err = s.keepValid(list[:chosen], list[chosen:], me, opts.allowResumptionPSK)
	}
	if err != nil {
		return nil, err
	}
	pv.resumed = opts.resumed
	tree := pv.tree
	newPriv := s.priv.Clone()
	if pv.ownUpdateKey != nil {
		newPriv.Set(s.own.Node(), pv.ownUpdateKey)
	}
	signer := s.signer
	if opts.Signer != nil {
		signer = opts.Signer
	}
	commitSecret := keyschedule.Zero(s.cs)
	commit := &wire.Commit{Proposals: proposalRefs(list)}
	var own *ratchettree.OwnPath
	if pv.pathRequired || opts.ForcePath {
		template := *tree.Leaf(s.own)
		if opts.LeafNode != nil {
			template = *opts.LeafNode
		}
		if opts.Signer != nil && !bytes.Equal(template.SignatureKey, opts.Signer.PublicKey()) {
			template.SignatureKey = opts.Signer.PublicKey()
		}
		own, err = tree.ApplyOwnPath(s.own, template, signer, s.ctx.GroupID, s.cfg.rand())
		if err != nil {
			return nil, err
		}
		defer own.Destroy()
		// The leaf was signed a moment ago: rather than verify that
		// signature (a tenth of the commit's cost), check that it was made
		// with the leaf's own key, and the leaf's other rules as usual.
		if !bytes.Equal(own.LeafNode.SignatureKey, signer.PublicKey()) {
			return nil, fmt.Errorf("%w: own leaf: signature key is not the signer's", ErrInvalidCommit)
		}
		check := s.leafCheck(wire.LeafNodeSourceCommit, s.own, pv.exts)
		check.SkipSignature = true
		if err := tree.ValidateLeaf(own.LeafNode, check); err != nil {
			return nil, fmt.Errorf("%w: own leaf: %w", ErrInvalidCommit, err)
		}
		provisional := s.provisionalContext(tree, pv.exts)
		commit.Path, err = tree.EncryptPath(own, provisional, leafSet(pv.added), s.cfg.rand())
		if err != nil {
			return nil, err
		}
		newPriv.Set(s.own.Node(), own.LeafKey)
		for i, x := range own.Nodes {
			newPriv.Set(x, own.NodeKeys[i])
		}
		commitSecret = own.CommitSecret
	}

	if opts.tamper != nil {
		opts.tamper(commit)
	}
	content := s.newContent(wire.ContentCommit, opts.AuthenticatedData)
	content.Commit = commit
	wf := wireFormat(opts.Encrypt)
	sig, err := framing.Sign(s.cs, s.signer, wf, &content, s.ctxEnc, s.cfg.rand())
	if err != nil {
		return nil, err
	}
	ac := &wire.AuthenticatedContent{WireFormat: wf, Content: content, Auth: wire.FramedContentAuthData{Signature: sig}}
	newPriv.Prune(tree)
	next, epoch, err := s.nextEpoch(pv, ac, commitSecret, s.secrets.InitSecret, nil, s.own, newPriv, signer)
	if err != nil {
		return nil, err
	}
	msg, err := s.frame(&content, &ac.Auth, opts.Encrypt)
	if err != nil {
		return nil, err
	}
	enc, err := codec.Marshal(msg)
	if err != nil {
		return nil, err
	}
	sc := s.staged(pv, list, me, commit.Path != nil, next)
	sc.Message = enc
	if len(pv.added) > 0 {
		sc.Welcome, err = next.welcome(epoch, pv, own, opts)
		if err != nil {
			return nil, err
		}
	}
	epoch.ForgetJoinerSecrets()
	if opts.GroupInfo != nil {
		if sc.GroupInfo, err = next.GroupInfo(*opts.GroupInfo); err != nil {
			return nil, err
		}
	}
	return sc, nil
}

// keepValid appends to list each of the cached proposals in pending that
// leaves it valid, in order, and returns it applied. It costs one
// application of the list per cached proposal, and runs only when the
// whole list is invalid.
func (s *State) keepValid(list, pending []committedProposal, me wire.Sender, allowResumptionPSK bool) ([]committedProposal, *provisional, error) {
	pv, err := s.applyProposals(list, me, false, allowResumptionPSK)
	if err != nil {
		return nil, nil, err // the committer's own list: no cached proposal mends it
	}
	list = slices.Clip(list)
	for _, cp := range pending {
		try := append(list, cp)
		if tried, err := s.applyProposals(try, me, false, allowResumptionPSK); err == nil {
			list, pv = try, tried
		}
	}
	return list, pv, nil
}

func isResumptionPSK(p wire.Proposal) bool {
	psk, ok := p.(*wire.PreSharedKey)
	return ok && psk.PSK.Type == wire.PSKResumption
}

// addPending appends the cached proposals not yet in list that keep it
// valid: no own Update, Remove or SelfRemove, one change per leaf
// (SelfRemoves first, then Removes, so that they win over Updates, and a
// SelfRemove over a Remove), one GroupContextExtensions, no ReInit mixed
// with others. SelfRemoves are left out if a member that would stay does
// not support them.
func (s *State) addPending(list []committedProposal, me wire.Sender, maxPerSender int) []committedProposal {
	out := s.withPending(list, me, true, maxPerSender)
	removed := map[uint32]bool{}
	selfRemoves := false
	for _, cp := range out {
		switch p := cp.proposal.(type) {
		case *wire.Remove:
			removed[p.Removed] = true
		case *wire.SelfRemove:
			removed[cp.sender.Index] = true
			selfRemoves = true
		}
	}
	if selfRemoves {
		if _, lacking := selfRemoveUnsupported(s.tree, removed); lacking {
			return s.withPending(list, me, false, maxPerSender)
		}
	}
	return out
}

// withPending is addPending, with or without pending SelfRemoves, taking
// at most maxPerSender cached proposals of one sender if it is positive.
func (s *State) withPending(list []committedProposal, me wire.Sender, selfRemoves bool, maxPerSender int) []committedProposal {
	listed := make(map[string]bool, len(list))
	for _, cp := range list {
		if cp.ref != nil {
			listed[string(cp.ref)] = true
		}
	}
	taken := map[wire.Sender]int{}
	touched := map[uint32]bool{}
	hasGCE, hasReInit := false, false
	for _, cp := range list {
		switch p := cp.proposal.(type) {
		case *wire.Update, *wire.SelfRemove:
			touched[cp.sender.Index] = true
		case *wire.Remove:
			touched[p.Removed] = true
		case *wire.GroupContextExtensions:
			hasGCE = true
		case *wire.ReInit:
			hasReInit = true
		}
	}
	if hasReInit {
		return list
	}
	// pass 0 takes SelfRemoves, pass 1 Removes, pass 2 the rest.
	pass := func(p wire.Proposal) int {
		switch p.(type) {
		case *wire.SelfRemove:
			return 0
		case *wire.Remove:
			return 1
		}
		return 2
	}
	for n := 0; n < 3; n++ {
		for _, cp := range s.proposals {
			if pass(cp.proposal) != n || listed[string(cp.ref)] {
				continue
			}
			if maxPerSender > 0 && taken[cp.sender] >= maxPerSender {
				continue
			}
			switch p := cp.proposal.(type) {
			case *wire.SelfRemove:
				if !selfRemoves || cp.sender == me || touched[cp.sender.Index] {
					continue
				}
				touched[cp.sender.Index] = true
			case *wire.Remove:
				if p.Removed == me.Index || touched[p.Removed] {
					continue
				}
				touched[p.Removed] = true
			case *wire.Update:
				if cp.sender == me || touched[cp.sender.Index] {
					continue
				}
				touched[cp.sender.Index] = true
			case *wire.GroupContextExtensions:
				if hasGCE {
					continue
				}
				hasGCE = true
			case *wire.ReInit:
				continue
			}
			taken[cp.sender]++
			list = append(list, committedProposal{proposal: cp.proposal, sender: cp.sender, ref: cp.ref, updateKey: cp.updateKey})
		}
	}
	return list
}

func leafSet(ls []LeafIndex) map[LeafIndex]bool {
	if len(ls) == 0 {
		return nil
	}
	m := make(map[LeafIndex]bool, len(ls))
	for _, l := range ls {
		m[l] = true
	}
	return m
}

// provisionalContext encodes the provisional GroupContext of a commit with
// a path (§12.4.1): the new epoch, tree hash and extensions with the old
// confirmed transcript hash.
func (s *State) provisionalContext(tree *ratchettree.Tree, exts wire.Extensions) []byte {
	ctx := s.ctx
	ctx.Epoch++
	ctx.TreeHash = tree.TreeHash()
	ctx.Extensions = exts
	return codec.MustMarshal(&ctx)
}

// nextEpoch runs the key schedule of a commit (§8) and builds the next
// epoch's State. When wantTag is not nil it must equal the computed
// confirmation tag; otherwise the tag is stored in ac.
func (s *State) nextEpoch(pv *provisional, ac *wire.AuthenticatedContent, commitSecret, initSecret, wantTag []byte,
	own LeafIndex, priv *ratchettree.PrivateKeys, signer *suite.SignaturePrivateKey) (*State, *keyschedule.Epoch, error) {
	confirmed, err := framing.ConfirmedTranscriptHash(s.cs, s.interimTranscriptHash, ac)
	if err != nil {
		return nil, nil, err
	}
	ctx := wire.GroupContext{
		Version:                 s.ctx.Version,
		CipherSuite:             s.cs,
		GroupID:                 s.ctx.GroupID,
		Epoch:                   s.ctx.Epoch + 1,
		TreeHash:                pv.tree.TreeHash(),
		ConfirmedTranscriptHash: confirmed,
		Extensions:              pv.exts,
	}
	ctxEnc, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, nil, err
	}
	from := s
	if pv.resumed != nil {
		from = pv.resumed
	}
	psk, err := pskSecret(s.cfg, s.cs, pv.psks, from)
	if err != nil {
		return nil, nil, err
	}
	epoch := keyschedule.New(s.cs, initSecret, commitSecret, psk, ctxEnc)
	tag := framing.ConfirmationTag(s.cs, epoch.ConfirmationKey, confirmed)
	if wantTag != nil {
		if err := framing.VerifyConfirmationTag(s.cs, epoch.ConfirmationKey, confirmed, wantTag); err != nil {
			epoch.Destroy()
			return nil, nil, ErrBadConfirmationTag
		}
	} else {
		ac.Auth.ConfirmationTag = tag
	}
	next, err := newEpochState(s.cfg, ctx, pv.tree, own, priv, signer, epoch, tag, s.resumption)
	if err != nil {
		return nil, nil, err
	}
	next.reinit = pv.reinit
	return next, epoch, nil
}

// staged describes a commit applied to produce next.
func (s *State) staged(pv *provisional, list []committedProposal, committer wire.Sender, hasPath bool, next *State) *StagedCommit {
	sc := &StagedCommit{
		State:     next,
		Committer: committer,
		Added:     pv.added,
		Removed:   pv.removed,
		Updated:   pv.updated,
		HasPath:   hasPath,
		ReInit:    pv.reinit,
	}
	if next != nil {
		sc.ConfirmationTag = next.confirmationTag
	}
	for _, cp := range list {
		sc.Proposals = append(sc.Proposals, AppliedProposal{Proposal: cp.proposal, Sender: cp.sender, Ref: cp.ref})
	}
	return sc
}
