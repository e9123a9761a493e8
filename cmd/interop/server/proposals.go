package server

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// propose sends a proposal from a member's current state and remembers
// the message as its own.
func (s *Server) propose(id uint32, build func(st *group.State) (wire.Proposal, error)) (*mlsclient.ProposalResponse, error) {
	resp := &mlsclient.ProposalResponse{}
	err := s.withState(id, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		p, err := build(st)
		if err != nil {
			return err
		}
		msg, ref, err := st.Propose(p, e.m.encrypt, nil)
		if err != nil {
			return err
		}
		e.remember(msg, ref)
		resp.Proposal = msg
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// remember records a proposal message handled by (or sent from) the state.
func (e *stateEntry) remember(msg, ref []byte) {
	if e.known == nil {
		e.known = map[string][]byte{}
	}
	e.known[string(msg)] = ref
}

// AddProposal proposes adding a KeyPackage.
func (s *Server) AddProposal(_ context.Context, req *mlsclient.AddProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(*group.State) (wire.Proposal, error) {
		kp, err := decodeKeyPackage(req.KeyPackage)
		if err != nil {
			return nil, err
		}
		return &wire.Add{KeyPackage: *kp}, nil
	})
}

// UpdateProposal proposes a fresh encryption key for the member's leaf.
func (s *Server) UpdateProposal(_ context.Context, req *mlsclient.UpdateProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(*group.State) (wire.Proposal, error) { return &wire.Update{}, nil })
}

// RemoveProposal proposes removing the member with an identity.
func (s *Server) RemoveProposal(_ context.Context, req *mlsclient.RemoveProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(st *group.State) (wire.Proposal, error) {
		l, err := leafOf(st.Tree().Wire(), req.RemovedId)
		if err != nil {
			return nil, err
		}
		return &wire.Remove{Removed: l}, nil
	})
}

// ExternalPSKProposal proposes injecting an external PSK.
func (s *Server) ExternalPSKProposal(_ context.Context, req *mlsclient.ExternalPSKProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(st *group.State) (wire.Proposal, error) {
		return externalPSK(st.Suite(), req.PskId)
	})
}

// ResumptionPSKProposal proposes injecting the resumption PSK of an epoch
// of this group.
func (s *Server) ResumptionPSKProposal(_ context.Context, req *mlsclient.ResumptionPSKProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(st *group.State) (wire.Proposal, error) {
		return resumptionPSK(st.Suite(), st.GroupID(), req.EpochId)
	})
}

// GroupContextExtensionsProposal proposes new group context extensions.
func (s *Server) GroupContextExtensionsProposal(_ context.Context, req *mlsclient.GroupContextExtensionsProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(*group.State) (wire.Proposal, error) {
		exts, err := extensions(req.Extensions)
		if err != nil {
			return nil, err
		}
		return &wire.GroupContextExtensions{Extensions: exts}, nil
	})
}

// ReInitProposal proposes reinitializing the group.
func (s *Server) ReInitProposal(_ context.Context, req *mlsclient.ReInitProposalRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(*group.State) (wire.Proposal, error) {
		return reInit(req.GroupId, req.CipherSuite, req.Extensions)
	})
}

// AddExternalSigner proposes adding an external sender to the group's
// external_senders extension, keeping the other extensions.
func (s *Server) AddExternalSigner(_ context.Context, req *mlsclient.AddExternalSignerRequest) (*mlsclient.ProposalResponse, error) {
	return s.propose(req.StateId, func(st *group.State) (wire.Proposal, error) {
		var entry externalSenderEntry
		if err := codec.Unmarshal(req.ExternalSender, &entry); err != nil {
			return nil, fmt.Errorf("%w: external_sender: %w", ErrBadRequest, err)
		}
		sender := entry.ExternalSender
		if err := signatureKeyEncoding(st.Suite(), sender.SignatureKey, "external sender's"); err != nil {
			return nil, err
		}
		var senders wire.ExternalSenders
		exts := wire.Extensions{}
		for _, x := range st.Extensions() {
			if x.Type != wire.ExtensionExternalSenders {
				exts = append(exts, x)
				continue
			}
			if err := codec.Unmarshal(x.Data, &senders); err != nil {
				return nil, fmt.Errorf("group's external_senders: %w", err)
			}
		}
		senders = append(senders, sender)
		data, err := codec.Marshal(senders)
		if err != nil {
			return nil, err
		}
		exts = append(exts, wire.Extension{Type: wire.ExtensionExternalSenders, Data: data})
		return &wire.GroupContextExtensions{Extensions: exts}, nil
	})
}

func nonce(cs suite.CipherSuite) ([]byte, error) {
	n := make([]byte, cs.Nh())
	if _, err := rand.Read(n); err != nil {
		return nil, err
	}
	return n, nil
}

func externalPSK(cs suite.CipherSuite, id []byte) (wire.Proposal, error) {
	n, err := nonce(cs)
	if err != nil {
		return nil, err
	}
	return &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: append([]byte(nil), id...), Nonce: n}}, nil
}

func resumptionPSK(cs suite.CipherSuite, groupID []byte, epoch uint64) (wire.Proposal, error) {
	n, err := nonce(cs)
	if err != nil {
		return nil, err
	}
	return &wire.PreSharedKey{PSK: wire.PreSharedKeyID{
		Type: wire.PSKResumption, Usage: wire.ResumptionApplication,
		PSKGroupID: append([]byte(nil), groupID...), PSKEpoch: epoch, Nonce: n,
	}}, nil
}

func reInit(groupID []byte, cipherSuiteID uint32, exts []*mlsclient.Extension) (wire.Proposal, error) {
	cs, err := cipherSuite(cipherSuiteID)
	if err != nil {
		return nil, err
	}
	x, err := extensions(exts)
	if err != nil {
		return nil, err
	}
	return &wire.ReInit{GroupID: append([]byte(nil), groupID...), Version: wire.MLS10, CipherSuite: cs, Extensions: x}, nil
}

// describedProposal builds the proposal a ProposalDescription asks for,
// in a group of suite cs and id groupID whose ratchet tree is rt.
func describedProposal(d *mlsclient.ProposalDescription, cs suite.CipherSuite, groupID []byte, rt func() wire.RatchetTree) (wire.Proposal, error) {
	switch string(d.ProposalType) {
	case "add":
		kp, err := decodeKeyPackage(d.KeyPackage)
		if err != nil {
			return nil, err
		}
		return &wire.Add{KeyPackage: *kp}, nil
	case "remove":
		l, err := leafOf(rt(), d.RemovedId)
		if err != nil {
			return nil, err
		}
		return &wire.Remove{Removed: l}, nil
	case "externalPSK":
		return externalPSK(cs, d.PskId)
	case "resumptionPSK":
		return resumptionPSK(cs, groupID, d.EpochId)
	case "groupContextExtensions":
		exts, err := extensions(d.Extensions)
		if err != nil {
			return nil, err
		}
		return &wire.GroupContextExtensions{Extensions: exts}, nil
	case "reinit":
		return reInit(d.GroupId, d.CipherSuite, d.Extensions)
	}
	return nil, fmt.Errorf("%w: proposal type %q", ErrBadRequest, d.ProposalType)
}
