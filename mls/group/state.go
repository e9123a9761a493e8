// Package group implements the MLS group state machine (RFC 9420, §8-§12):
// creating a group, protecting and processing messages, proposals and
// commits, Welcome and external joins, PSKs, ReInit and branching.
//
// A State is one member's view of one epoch. Apart from its message keys
// (which ratchet as messages are sent and received) and its cache of
// proposals, a State never changes: creating or processing a commit
// returns a StagedCommit holding the next epoch's State, and the old State
// stays valid. This is what a member without a delivery service needs:
// several commits on the same epoch can be staged side by side, a message
// can be processed against any retained epoch, and rolling back is
// keeping an older State. States of successive epochs share their ratchet
// trees structurally, so keeping H of them costs what changed between
// them, not H copies.
//
// A State is not safe for concurrent use.
package group

import (
	"crypto/rand"
	"fmt"
	"io"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

// LeafIndex is a member's position in the tree.
type LeafIndex = treemath.LeafIndex

// State is one member's state in one epoch.
type State struct {
	cfg    *Config
	cs     suite.CipherSuite
	ctx    wire.GroupContext
	ctxEnc []byte // encoded ctx

	tree   *ratchettree.Tree
	own    LeafIndex
	priv   *ratchettree.PrivateKeys
	signer *suite.SignaturePrivateKey

	secrets *keyschedule.Epoch
	keys    *framing.EpochKeys

	interimTranscriptHash []byte
	confirmationTag       []byte

	// Proposals seen in this epoch, by reference; own Update proposals
	// remember the private key of their new leaf.
	proposals []*cachedProposal

	// resumption holds the resumption PSKs of this and past epochs, newest
	// last.
	resumption []resumptionPSK

	// reinit is set when the commit that made this epoch held a ReInit:
	// the group may then only be reinitialized (§11.2).
	reinit *wire.ReInit

	// retired is set by Retire: the State only reads late messages.
	retired bool
}

type resumptionPSK struct {
	epoch  uint64
	secret []byte
}

// cachedProposal is a proposal received (or sent) in the epoch.
type cachedProposal struct {
	ref      []byte
	proposal wire.Proposal
	sender   wire.Sender
	// updateKey is the new leaf's private key of this member's own Update.
	updateKey *suite.HPKEPrivateKey
}

func (c *Config) rand() io.Reader {
	if c.Rand != nil {
		return c.Rand
	}
	return rand.Reader
}

// Suite returns the group's cipher suite.
func (s *State) Suite() suite.CipherSuite { return s.cs }

// GroupID returns the group's id.
func (s *State) GroupID() []byte { return s.ctx.GroupID }

// Epoch returns the epoch number.
func (s *State) Epoch() uint64 { return s.ctx.Epoch }

// GroupContext returns a copy of the epoch's GroupContext.
func (s *State) GroupContext() wire.GroupContext { return s.ctx }

// Extensions returns the group context extensions.
func (s *State) Extensions() wire.Extensions { return s.ctx.Extensions }

// Tree returns the epoch's ratchet tree. Callers must not modify it; use
// Clone for a copy to change.
func (s *State) Tree() *ratchettree.Tree { return s.tree }

// OwnLeaf returns this member's leaf index.
func (s *State) OwnLeaf() LeafIndex { return s.own }

// Signer returns this member's signature key.
func (s *State) Signer() *suite.SignaturePrivateKey { return s.signer }

// EpochAuthenticator returns the epoch_authenticator (§8.7).
func (s *State) EpochAuthenticator() []byte { return s.secrets.EpochAuthenticator }

// ConfirmationTag returns the confirmation tag of the commit that started
// the epoch.
func (s *State) ConfirmationTag() []byte { return s.confirmationTag }

// InterimTranscriptHash returns the interim transcript hash of the epoch.
func (s *State) InterimTranscriptHash() []byte { return s.interimTranscriptHash }

// ResumptionPSK returns the epoch's resumption_psk.
func (s *State) ResumptionPSK() []byte { return s.secrets.ResumptionPSK }

// PendingReInit returns the ReInit committed into this epoch, if any.
func (s *State) PendingReInit() *wire.ReInit { return s.reinit }

// Export is MLS-Exporter(label, context, length) (§8.5).
func (s *State) Export(label string, context []byte, length uint16) ([]byte, error) {
	return s.secrets.Export(label, context, length)
}

// Member describes one member of the group.
type Member struct {
	Leaf     LeafIndex
	LeafNode *wire.LeafNode
}

// Members returns the group's members in leaf order.
func (s *State) Members() []Member {
	var out []Member
	for _, l := range s.tree.LeafIndices() {
		out = append(out, Member{Leaf: l, LeafNode: s.tree.Leaf(l)})
	}
	return out
}

// requiredCapabilities decodes the group's required_capabilities
// extension.
func requiredCapabilities(exts wire.Extensions) (*wire.RequiredCapabilities, error) {
	data, ok := exts.Find(wire.ExtensionRequiredCapabilities)
	if !ok {
		return nil, nil
	}
	var rc wire.RequiredCapabilities
	if err := codec.Unmarshal(data, &rc); err != nil {
		return nil, fmt.Errorf("required_capabilities: %w", err)
	}
	return &rc, nil
}

// externalSenders decodes the group's external_senders extension.
func externalSenders(exts wire.Extensions) (wire.ExternalSenders, error) {
	data, ok := exts.Find(wire.ExtensionExternalSenders)
	if !ok {
		return nil, nil
	}
	var es wire.ExternalSenders
	if err := codec.Unmarshal(data, &es); err != nil {
		return nil, fmt.Errorf("external_senders: %w", err)
	}
	return es, nil
}

// newEpochState assembles the State of an epoch from its parts and derives
// its message keys.
func newEpochState(cfg *Config, ctx wire.GroupContext, tree *ratchettree.Tree, own LeafIndex, priv *ratchettree.PrivateKeys,
	signer *suite.SignaturePrivateKey, secrets *keyschedule.Epoch, confirmationTag []byte, prevResumption []resumptionPSK) (*State, error) {
	ctxEnc, err := codec.Marshal(&ctx)
	if err != nil {
		return nil, err
	}
	s := &State{
		cfg:             cfg,
		cs:              ctx.CipherSuite,
		ctx:             ctx,
		ctxEnc:          ctxEnc,
		tree:            tree,
		own:             own,
		priv:            priv,
		signer:          signer,
		secrets:         secrets,
		confirmationTag: confirmationTag,
	}
	s.interimTranscriptHash = framing.InterimTranscriptHash(s.cs, ctx.ConfirmedTranscriptHash, confirmationTag)
	s.keys = &framing.EpochKeys{
		Suite:            s.cs,
		SenderDataSecret: secrets.SenderDataSecret,
		Tree:             secrettree.New(s.cs, secrets.EncryptionSecret, tree.Leaves(), cfg.secretTree()),
	}
	// The secret tree holds its own copy of the encryption secret; it is
	// not needed elsewhere.
	clear(secrets.EncryptionSecret)
	secrets.EncryptionSecret = nil
	keep := cfg.resumptionHistory() - 1
	if len(prevResumption) > keep {
		prevResumption = prevResumption[len(prevResumption)-keep:]
	}
	s.resumption = append(append([]resumptionPSK(nil), prevResumption...), resumptionPSK{epoch: ctx.Epoch, secret: append([]byte(nil), secrets.ResumptionPSK...)})
	return s, nil
}

// Create starts a new group with this member alone in epoch 0 (§11). The
// member's leaf is the leaf of bundle's KeyPackage.
func Create(cfg *Config, groupID []byte, extensions wire.Extensions, bundle *KeyPackageBundle) (*State, error) {
	if cfg == nil {
		cfg = &Config{}
	}
	kp := bundle.KeyPackage
	cs := kp.CipherSuite
	if err := cs.Check(); err != nil {
		return nil, err
	}
	tree := ratchettree.New(cs)
	leaf := kp.LeafNode
	tree.AddLeaf(&leaf)
	if rc, err := requiredCapabilities(extensions); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	} else if err := tree.ValidateLeaf(&leaf, ratchettree.LeafCheck{Required: rc, Index: 0, Replaces: true}); err != nil {
		return nil, err
	}
	ctx := wire.GroupContext{
		Version:                 wire.MLS10,
		CipherSuite:             cs,
		GroupID:                 append([]byte(nil), groupID...),
		Epoch:                   0,
		TreeHash:                tree.TreeHash(),
		ConfirmedTranscriptHash: []byte{},
		Extensions:              extensions,
	}
	epochSecret := make([]byte, cs.Nh())
	if _, err := io.ReadFull(cfg.rand(), epochSecret); err != nil {
		return nil, fmt.Errorf("group: reading randomness: %w", err)
	}
	secrets := keyschedule.FromEpochSecret(cs, epochSecret)
	clear(epochSecret)
	tag := framing.ConfirmationTag(cs, secrets.ConfirmationKey, ctx.ConfirmedTranscriptHash)
	priv := ratchettree.NewPrivateKeys(0, bundle.EncryptionKey)
	return newEpochState(cfg, ctx, tree, 0, priv, bundle.Signer, secrets, tag, nil)
}

// GroupInfoOptions shape a GroupInfo.
type GroupInfoOptions struct {
	// WithTree includes the ratchet_tree extension.
	WithTree bool
	// WithExternalPub includes the external_pub extension, which external
	// joiners need.
	WithExternalPub bool
	// Extensions are added as given.
	Extensions wire.Extensions
}

// GroupInfo returns a signed GroupInfo for the epoch (§12.4.3).
func (s *State) GroupInfo(opts GroupInfoOptions) (*wire.GroupInfo, error) {
	gi := &wire.GroupInfo{
		GroupContext:    s.ctx,
		Extensions:      append(wire.Extensions(nil), opts.Extensions...),
		ConfirmationTag: s.confirmationTag,
		Signer:          uint32(s.own),
	}
	if opts.WithExternalPub {
		k, err := s.secrets.ExternalKey()
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{Type: wire.ExtensionExternalPub, Data: codec.MustMarshal(&wire.ExternalPub{PublicKey: k.PublicKey()})})
	}
	if opts.WithTree {
		enc, err := codec.Marshal(s.tree.Wire())
		if err != nil {
			return nil, err
		}
		gi.Extensions = append(gi.Extensions, wire.Extension{Type: wire.ExtensionRatchetTree, Data: enc})
	}
	if s.cfg.Grease {
		g := &greaser{r: s.cfg.rand()}
		gi.Extensions = g.extension(gi.Extensions, wire.ExtensionType(g.pick()[0]), g.data())
		if err := g.failed(); err != nil {
			return nil, err
		}
	}
	if err := gi.Sign(s.signer); err != nil {
		return nil, err
	}
	return gi, nil
}

// resumptionPSK returns the resumption PSK of an epoch of this group.
func (s *State) resumptionPSK(epoch uint64) ([]byte, bool) {
	for _, r := range s.resumption {
		if r.epoch == epoch {
			return r.secret, true
		}
	}
	return nil, false
}

// lookupPSK resolves a PreSharedKeyID to its secret.
func (s *State) lookupPSK(id *wire.PreSharedKeyID) ([]byte, error) {
	return lookupPSK(s.cfg, id, s)
}

func lookupPSK(cfg *Config, id *wire.PreSharedKeyID, s *State) ([]byte, error) {
	switch id.Type {
	case wire.PSKExternal:
		if cfg.PSKs != nil {
			if v, ok := cfg.PSKs.ExternalPSK(id.PSKID); ok {
				return v, nil
			}
		}
		return nil, fmt.Errorf("%w: external PSK %x", ErrMissingPSK, id.PSKID)
	case wire.PSKResumption:
		if s != nil && string(id.PSKGroupID) == string(s.ctx.GroupID) {
			if v, ok := s.resumptionPSK(id.PSKEpoch); ok {
				return v, nil
			}
		}
		if cfg.PSKs != nil {
			if v, ok := cfg.PSKs.ResumptionPSK(id.PSKGroupID, id.PSKEpoch); ok {
				return v, nil
			}
		}
		return nil, fmt.Errorf("%w: resumption PSK of epoch %d", ErrMissingPSK, id.PSKEpoch)
	}
	return nil, fmt.Errorf("%w: PSK type %d", ErrMissingPSK, id.Type)
}

// pskSecret computes psk_secret for a list of PSK ids.
func pskSecret(cfg *Config, cs suite.CipherSuite, ids []wire.PreSharedKeyID, s *State) ([]byte, error) {
	psks := make([]keyschedule.PSK, len(ids))
	for i := range ids {
		v, err := lookupPSK(cfg, &ids[i], s)
		if err != nil {
			return nil, err
		}
		psks[i] = keyschedule.PSK{ID: ids[i], Secret: v}
	}
	return keyschedule.PSKSecret(cs, psks)
}

// Destroy overwrites the secrets this State owns alone: its epoch secrets
// and message keys. The ratchet tree and private keys may be shared with
// other epochs and are left to them. Call it when the epoch is expired.
func (s *State) Destroy() {
	s.secrets.Destroy()
	s.keys.Tree.Destroy()
	for _, p := range s.proposals {
		if p.updateKey != nil {
			p.updateKey.Destroy()
		}
	}
	s.proposals = nil
}

// PendingProposals returns the number of proposals cached in this epoch
// (received, or sent by this member) that a commit could include.
func (s *State) PendingProposals() int { return len(s.proposals) }

// CachedProposals returns the proposals cached in this epoch (received,
// or sent by this member), in the order they were cached, with their
// senders and ProposalRefs. The proposals are the state's own: do not
// change them.
func (s *State) CachedProposals() []AppliedProposal {
	out := make([]AppliedProposal, len(s.proposals))
	for i, cp := range s.proposals {
		out[i] = AppliedProposal{Proposal: cp.proposal, Sender: cp.sender, Ref: cp.ref}
	}
	return out
}

// PendingCommittable returns the number of cached proposals this member
// could commit: all but a Remove of its own leaf and its own SelfRemove
// (§12.2: a committer does not remove itself).
func (s *State) PendingCommittable() int {
	n := 0
	for _, p := range s.proposals {
		switch q := p.proposal.(type) {
		case *wire.Remove:
			if LeafIndex(q.Removed) == s.own {
				continue
			}
		case *wire.SelfRemove:
			if p.sender == wire.MemberSender(uint32(s.own)) {
				continue
			}
		}
		n++
	}
	return n
}

// SkipOwnGenerations advances this member's own sending ratchets by n
// generations. Call it on a State restored from a snapshot that may be
// older than the last message sent, so that no key and nonce is used
// twice; receivers accept the jump as long as n is below their forward
// limit (secrettree.Config.MaxForwardDistance).
func (s *State) SkipOwnGenerations(n uint32) error {
	for _, typ := range []secrettree.RatchetType{secrettree.Handshake, secrettree.Application} {
		if err := s.keys.Tree.Skip(s.own, typ, n); err != nil {
			return err
		}
	}
	return nil
}
