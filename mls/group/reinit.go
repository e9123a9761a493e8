package group

import (
	"fmt"
	"io"

	"github.com/parley-p2p/parley/mls/wire"
)

// ResumedGroupOptions shape the first commit of a group made by
// reinitializing (§11.2) or branching (§11.3) another.
type ResumedGroupOptions struct {
	// KeyPackages of the other members of the new group.
	KeyPackages []*wire.KeyPackage
	// WelcomeWithTree puts the ratchet tree in the Welcome.
	WelcomeWithTree bool
	// Extensions of the new group (branching only; a reinit uses the
	// ReInit's).
	Extensions wire.Extensions
	// GroupID of the new group (branching only).
	GroupID []byte
	Encrypt bool
	// ForcePath gives the first commit an UpdatePath, which adding
	// members alone does not need.
	ForcePath bool
}

// ReInitGroup creates the group that replaces this one after a committed
// ReInit (§11.2): this member alone, from bundle (whose suite must be the
// ReInit's), then a commit adding the given members with a resumption PSK
// of usage reinit. It returns the new group's epoch 0 state and the staged
// commit to epoch 1, whose Welcome goes to the other members.
func (s *State) ReInitGroup(bundle *KeyPackageBundle, opts ResumedGroupOptions) (*State, *StagedCommit, error) {
	ri := s.reinit
	if ri == nil {
		return nil, nil, fmt.Errorf("%w: no ReInit committed in this epoch", ErrInvalidProposal)
	}
	if bundle.KeyPackage.CipherSuite != ri.CipherSuite {
		return nil, nil, fmt.Errorf("%w: key package suite %v, ReInit asks for %v", ErrInvalidKeyPackage, bundle.KeyPackage.CipherSuite, ri.CipherSuite)
	}
	return s.resume(bundle, ri.GroupID, ri.Extensions, wire.ResumptionReInit, opts)
}

// Branch creates a subgroup of this group (§11.3): this member alone, then
// a commit adding the given members with a resumption PSK of usage branch.
func (s *State) Branch(bundle *KeyPackageBundle, opts ResumedGroupOptions) (*State, *StagedCommit, error) {
	if bundle.KeyPackage.CipherSuite != s.cs {
		return nil, nil, fmt.Errorf("%w: a branch keeps the cipher suite", ErrInvalidKeyPackage)
	}
	return s.resume(bundle, opts.GroupID, opts.Extensions, wire.ResumptionBranch, opts)
}

func (s *State) resume(bundle *KeyPackageBundle, groupID []byte, exts wire.Extensions, usage wire.ResumptionPSKUsage, opts ResumedGroupOptions) (*State, *StagedCommit, error) {
	fresh, err := Create(s.cfg, groupID, exts, bundle)
	if err != nil {
		return nil, nil, err
	}
	cs := bundle.KeyPackage.CipherSuite
	nonce := make([]byte, cs.Nh())
	if _, err := io.ReadFull(s.cfg.rand(), nonce); err != nil {
		return nil, nil, fmt.Errorf("group: reading randomness: %w", err)
	}
	props := []wire.Proposal{&wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		Type: wire.PSKResumption, Usage: usage, PSKGroupID: s.ctx.GroupID, PSKEpoch: s.ctx.Epoch, Nonce: nonce,
	}}}
	for _, kp := range opts.KeyPackages {
		props = append(props, &wire.Add{KeyPackage: *kp})
	}
	sc, err := fresh.Commit(CommitOptions{
		Proposals:          props,
		WelcomeWithTree:    opts.WelcomeWithTree,
		Encrypt:            opts.Encrypt,
		ForcePath:          opts.ForcePath,
		allowResumptionPSK: true,
		resumed:            s,
	})
	if err != nil {
		return nil, nil, err
	}
	return fresh, sc, nil
}
