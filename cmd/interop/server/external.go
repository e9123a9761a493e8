package server

import (
	"bytes"
	"context"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// CreateExternalSigner makes a signing key for an external sender and
// returns its ExternalSender entry.
func (s *Server) CreateExternalSigner(_ context.Context, req *mlsclient.CreateExternalSignerRequest) (*mlsclient.CreateExternalSignerResponse, error) {
	cs, err := cipherSuite(req.CipherSuite)
	if err != nil {
		return nil, grpcError(err)
	}
	signer, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		return nil, grpcError(err)
	}
	sender, err := codec.Marshal(&externalSenderEntry{wire.ExternalSender{SignatureKey: signer.PublicKey(), Credential: wire.NewBasicCredential(req.Identity)}})
	if err != nil {
		return nil, grpcError(err)
	}
	return &mlsclient.CreateExternalSignerResponse{
		SignerId:       s.add(&externalSigner{cs: cs, signer: signer}),
		ExternalSender: sender,
	}, nil
}

// ExternalSignerProposal makes a proposal from an external sender for the
// group a GroupInfo describes. The sender's index is found in the group's
// external_senders by its key; signer_index is used only when the key is
// not listed.
func (s *Server) ExternalSignerProposal(_ context.Context, req *mlsclient.ExternalSignerProposalRequest) (*mlsclient.ProposalResponse, error) {
	es, err := lookup[*externalSigner](s, req.SignerId, "signer")
	if err != nil {
		return nil, grpcError(err)
	}
	gi, err := decodeGroupInfo(req.GroupInfo)
	if err != nil {
		return nil, grpcError(err)
	}
	cs := gi.GroupContext.CipherSuite
	if cs != es.cs {
		return nil, grpcError(fmt.Errorf("%w: signer of suite %v for a group of suite %v", ErrBadRequest, es.cs, cs))
	}
	if req.Description == nil {
		return nil, grpcError(fmt.Errorf("%w: no proposal description", ErrBadRequest))
	}
	tree := func() wire.RatchetTree {
		if data, ok := gi.Extensions.Find(wire.ExtensionRatchetTree); ok {
			if rt, err := decodeTree(data); err == nil {
				return rt
			}
		}
		rt, _ := decodeTree(req.RatchetTree)
		return rt
	}
	p, err := describedProposal(req.Description, cs, gi.GroupContext.GroupID, tree)
	if err != nil {
		return nil, grpcError(err)
	}
	index := req.SignerIndex
	if data, ok := gi.GroupContext.Extensions.Find(wire.ExtensionExternalSenders); ok {
		var senders wire.ExternalSenders
		if err := codec.Unmarshal(data, &senders); err != nil {
			return nil, grpcError(fmt.Errorf("%w: group's external_senders: %w", ErrBadRequest, err))
		}
		for i, x := range senders {
			if bytes.Equal(x.SignatureKey, es.signer.PublicKey()) {
				index = uint32(i)
				break
			}
		}
	}
	msg, err := group.ExternalProposal(cs, gi.GroupContext.GroupID, gi.GroupContext.Epoch, index, es.signer, p, nil)
	if err != nil {
		return nil, grpcError(err)
	}
	return &mlsclient.ProposalResponse{Proposal: msg}, nil
}

// externalSenderEntry encodes one ExternalSender on its own (the wire
// package encodes only the list).
type externalSenderEntry struct{ wire.ExternalSender }

func (e *externalSenderEntry) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, e.SignatureKey)
	e.Credential.MarshalMLS(b)
}

func (e *externalSenderEntry) UnmarshalMLS(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &e.SignatureKey) && e.Credential.UnmarshalMLS(s)
}
