package server

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// newBundle makes a KeyPackage with a basic credential, with GREASE if the
// server puts it in; a nil signer gets a fresh key.
func (s *Server) newBundle(cs suite.CipherSuite, identity []byte, signer *suite.SignaturePrivateKey) (*group.KeyPackageBundle, error) {
	if signer == nil {
		var err error
		if signer, err = cs.GenerateSignatureKey(nil); err != nil {
			return nil, err
		}
	}
	return group.NewKeyPackage(cs, signer, group.KeyPackageOptions{Credential: wire.NewBasicCredential(identity), Grease: s.grease})
}

// CreateGroup starts a group with a new member alone in it.
func (s *Server) CreateGroup(_ context.Context, req *mlsclient.CreateGroupRequest) (*mlsclient.CreateGroupResponse, error) {
	cs, err := cipherSuite(req.CipherSuite)
	if err != nil {
		return nil, grpcError(err)
	}
	m := s.newMember(req.Identity, req.EncryptHandshake)
	bundle, err := s.newBundle(cs, req.Identity, nil)
	if err != nil {
		return nil, grpcError(err)
	}
	st, err := group.Create(m.cfg, req.GroupId, nil, bundle)
	if err != nil {
		return nil, grpcError(err)
	}
	return &mlsclient.CreateGroupResponse{StateId: s.add(&stateEntry{m: m, s: st})}, nil
}

// CreateKeyPackage makes a KeyPackage for a new member and keeps it for
// JoinGroup.
func (s *Server) CreateKeyPackage(_ context.Context, req *mlsclient.CreateKeyPackageRequest) (*mlsclient.CreateKeyPackageResponse, error) {
	cs, err := cipherSuite(req.CipherSuite)
	if err != nil {
		return nil, grpcError(err)
	}
	bundle, err := s.newBundle(cs, req.Identity, nil)
	if err != nil {
		return nil, grpcError(err)
	}
	kp, err := encodeMessage(bundle.KeyPackage)
	if err != nil {
		return nil, grpcError(err)
	}
	id := s.add(&transaction{m: s.newMember(req.Identity, false), bundle: bundle})
	return &mlsclient.CreateKeyPackageResponse{
		TransactionId:  id,
		KeyPackage:     kp,
		InitPriv:       bundle.InitKey.Bytes(),
		EncryptionPriv: bundle.EncryptionKey.Bytes(),
		SignaturePriv:  bundle.Signer.Bytes(),
	}, nil
}

// JoinGroup joins a group from a Welcome for a pending KeyPackage.
func (s *Server) JoinGroup(_ context.Context, req *mlsclient.JoinGroupRequest) (*mlsclient.JoinGroupResponse, error) {
	tx, err := lookup[*transaction](s, req.TransactionId, "transaction")
	if err != nil {
		return nil, grpcError(err)
	}
	w, err := decodeWelcome(req.Welcome)
	if err != nil {
		return nil, grpcError(err)
	}
	rt, err := decodeTree(req.RatchetTree)
	if err != nil {
		return nil, grpcError(err)
	}
	tx.m.mu.Lock()
	defer tx.m.mu.Unlock()
	st, err := group.JoinWelcome(tx.m.cfg, w, tx.bundle, group.JoinOptions{Tree: rt})
	if err != nil {
		return nil, grpcError(err)
	}
	tx.bundle.DestroyInitKey()
	tx.m.encrypt = req.EncryptHandshake
	return &mlsclient.JoinGroupResponse{
		StateId:            s.add(&stateEntry{m: tx.m, s: st}),
		EpochAuthenticator: st.EpochAuthenticator(),
	}, nil
}

// ExternalJoin joins a group by external commit as a new member, removing
// its prior appearance (same identity) when asked.
func (s *Server) ExternalJoin(_ context.Context, req *mlsclient.ExternalJoinRequest) (*mlsclient.ExternalJoinResponse, error) {
	gi, err := decodeGroupInfo(req.GroupInfo)
	if err != nil {
		return nil, grpcError(err)
	}
	rt, err := decodeTree(req.RatchetTree)
	if err != nil {
		return nil, grpcError(err)
	}
	cs := gi.GroupContext.CipherSuite
	signer, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		return nil, grpcError(err)
	}
	m := s.newMember(req.Identity, req.EncryptHandshake)
	opts := group.ExternalJoinOptions{Tree: rt, Credential: wire.NewBasicCredential(req.Identity)}
	if req.RemovePrior {
		tree := rt
		if data, ok := gi.Extensions.Find(wire.ExtensionRatchetTree); ok {
			if tree, err = decodeTree(data); err != nil {
				return nil, grpcError(err)
			}
		}
		prior, err := leafOf(tree, req.Identity)
		if err != nil {
			return nil, grpcError(fmt.Errorf("remove_prior: %w", err))
		}
		l := group.LeafIndex(prior)
		opts.Resync = &l
	}
	for _, p := range req.Psks {
		m.psks.put(p.PskId, p.PskSecret)
		nonce := make([]byte, cs.Nh())
		if _, err := rand.Read(nonce); err != nil {
			return nil, grpcError(err)
		}
		opts.PSKs = append(opts.PSKs, wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: append([]byte(nil), p.PskId...), Nonce: nonce})
	}
	sc, err := group.JoinExternal(m.cfg, gi, signer, opts)
	if err != nil {
		return nil, grpcError(err)
	}
	return &mlsclient.ExternalJoinResponse{
		StateId:            s.add(&stateEntry{m: m, s: sc.State}),
		Commit:             sc.Message,
		EpochAuthenticator: sc.State.EpochAuthenticator(),
	}, nil
}

// NewMemberAddProposal makes a self-signed Add proposal (sender type
// new_member_proposal) for a new member, whose KeyPackage waits for the
// Welcome like CreateKeyPackage's.
func (s *Server) NewMemberAddProposal(_ context.Context, req *mlsclient.NewMemberAddProposalRequest) (*mlsclient.NewMemberAddProposalResponse, error) {
	gi, err := decodeGroupInfo(req.GroupInfo)
	if err != nil {
		return nil, grpcError(err)
	}
	bundle, err := s.newBundle(gi.GroupContext.CipherSuite, req.Identity, nil)
	if err != nil {
		return nil, grpcError(err)
	}
	msg, err := group.NewMemberAddProposal(gi.GroupContext.GroupID, gi.GroupContext.Epoch, bundle, nil)
	if err != nil {
		return nil, grpcError(err)
	}
	id := s.add(&transaction{m: s.newMember(req.Identity, false), bundle: bundle})
	return &mlsclient.NewMemberAddProposalResponse{
		TransactionId:  id,
		Proposal:       msg,
		InitPriv:       bundle.InitKey.Bytes(),
		EncryptionPriv: bundle.EncryptionKey.Bytes(),
		SignaturePriv:  bundle.Signer.Bytes(),
	}, nil
}
