package server

import (
	"context"
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// reinitAfter moves a member into the reinitialization that the epoch
// next starts: e is superseded and a KeyPackage of the new suite waits
// for the new group.
func (s *Server) reinitAfter(e *stateEntry, next *group.State) (*mlsclient.HandleReInitCommitResponse, error) {
	ri := next.PendingReInit()
	if ri == nil {
		return nil, fmt.Errorf("%w: the commit holds no ReInit", ErrBadRequest)
	}
	bundle, err := s.newBundle(ri.CipherSuite, e.m.identity, nil)
	if err != nil {
		return nil, err
	}
	kp, err := encodeMessage(bundle.KeyPackage)
	if err != nil {
		return nil, err
	}
	s.supersede(e, next)
	return &mlsclient.HandleReInitCommitResponse{
		ReinitId:           s.add(&reinitEntry{m: e.m, old: next, bundle: bundle}),
		KeyPackage:         kp,
		EpochAuthenticator: next.EpochAuthenticator(),
	}, nil
}

func (s *Server) handleReInit(id uint32, next func(e *stateEntry) (*group.State, error)) (*mlsclient.HandleReInitCommitResponse, error) {
	var resp *mlsclient.HandleReInitCommitResponse
	err := s.withState(id, func(e *stateEntry) error {
		st, err := next(e)
		if err != nil {
			return err
		}
		resp, err = s.reinitAfter(e, st)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// HandlePendingReInitCommit adopts the member's own ReInit commit.
func (s *Server) HandlePendingReInitCommit(_ context.Context, req *mlsclient.HandlePendingCommitRequest) (*mlsclient.HandleReInitCommitResponse, error) {
	return s.handleReInit(req.StateId, adoptPending)
}

// HandleReInitCommit processes another member's ReInit commit.
func (s *Server) HandleReInitCommit(_ context.Context, req *mlsclient.HandleCommitRequest) (*mlsclient.HandleReInitCommitResponse, error) {
	return s.handleReInit(req.StateId, func(e *stateEntry) (*group.State, error) {
		return handleCommit(e, req.Proposal, req.Commit)
	})
}

func decodeKeyPackages(data [][]byte) ([]*wire.KeyPackage, error) {
	out := make([]*wire.KeyPackage, len(data))
	for i, d := range data {
		kp, err := decodeKeyPackage(d)
		if err != nil {
			return nil, fmt.Errorf("key package %d: %w", i, err)
		}
		out[i] = kp
	}
	return out, nil
}

// subgroup registers the first epoch of a reinitialized or branched group
// made by this member.
func (s *Server) subgroup(m *member, fresh *group.State, sc *group.StagedCommit, externalTree bool) (*mlsclient.CreateSubgroupResponse, error) {
	fresh.Destroy() // epoch 0, never used
	welcome, err := encodeMessage(sc.Welcome)
	if err != nil {
		return nil, err
	}
	tree, err := ratchetTreeOf(sc.State, externalTree)
	if err != nil {
		return nil, err
	}
	return &mlsclient.CreateSubgroupResponse{
		StateId:            s.add(&stateEntry{m: m, s: sc.State}),
		Welcome:            welcome,
		RatchetTree:        tree,
		EpochAuthenticator: sc.State.EpochAuthenticator(),
	}, nil
}

// ReInitWelcome creates the new group of a reinitialization with the
// other members' new KeyPackages.
func (s *Server) ReInitWelcome(_ context.Context, req *mlsclient.ReInitWelcomeRequest) (*mlsclient.CreateSubgroupResponse, error) {
	ri, err := lookup[*reinitEntry](s, req.ReinitId, "reinit")
	if err != nil {
		return nil, grpcError(err)
	}
	kps, err := decodeKeyPackages(req.KeyPackage)
	if err != nil {
		return nil, grpcError(err)
	}
	ri.m.mu.Lock()
	defer ri.m.mu.Unlock()
	fresh, sc, err := ri.old.ReInitGroup(ri.bundle, group.ResumedGroupOptions{
		KeyPackages:     kps,
		WelcomeWithTree: !req.ExternalTree,
		Encrypt:         ri.m.encrypt,
		ForcePath:       req.ForcePath,
	})
	if err != nil {
		return nil, grpcError(err)
	}
	resp, err := s.subgroup(ri.m, fresh, sc, req.ExternalTree)
	return resp, grpcError(err)
}

// HandleReInitWelcome joins the new group of a reinitialization.
func (s *Server) HandleReInitWelcome(_ context.Context, req *mlsclient.HandleReInitWelcomeRequest) (*mlsclient.JoinGroupResponse, error) {
	ri, err := lookup[*reinitEntry](s, req.ReinitId, "reinit")
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
	ri.m.mu.Lock()
	defer ri.m.mu.Unlock()
	st, err := group.JoinWelcome(ri.m.cfg, w, ri.bundle, group.JoinOptions{Tree: rt, Resumed: ri.old})
	if err != nil {
		return nil, grpcError(err)
	}
	return &mlsclient.JoinGroupResponse{StateId: s.add(&stateEntry{m: ri.m, s: st}), EpochAuthenticator: st.EpochAuthenticator()}, nil
}

// CreateBranch creates a subgroup of the group with the given members'
// KeyPackages; the member keeps its state in the old group.
func (s *Server) CreateBranch(_ context.Context, req *mlsclient.CreateBranchRequest) (*mlsclient.CreateSubgroupResponse, error) {
	kps, err := decodeKeyPackages(req.KeyPackages)
	if err != nil {
		return nil, grpcError(err)
	}
	exts, err := extensions(req.Extensions)
	if err != nil {
		return nil, grpcError(err)
	}
	var resp *mlsclient.CreateSubgroupResponse
	err = s.withState(req.StateId, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		bundle, err := s.newBundle(st.Suite(), e.m.identity, st.Signer())
		if err != nil {
			return err
		}
		fresh, sc, err := st.Branch(bundle, group.ResumedGroupOptions{
			KeyPackages:     kps,
			WelcomeWithTree: !req.ExternalTree,
			Extensions:      exts,
			GroupID:         req.GroupId,
			Encrypt:         e.m.encrypt,
			ForcePath:       req.ForcePath,
		})
		if err != nil {
			return err
		}
		resp, err = s.subgroup(e.m, fresh, sc, req.ExternalTree)
		return err
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// HandleBranch joins a subgroup from a Welcome for a pending KeyPackage,
// with the member's state in the old group for the branch PSK.
func (s *Server) HandleBranch(_ context.Context, req *mlsclient.HandleBranchRequest) (*mlsclient.HandleBranchResponse, error) {
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
	// The old state is only read for what never changes in a State (its
	// group, tree and resumption PSKs), so its member need not stay
	// locked while the joiner's is.
	var old *group.State
	var encrypt bool
	err = s.withState(req.StateId, func(e *stateEntry) error {
		old, encrypt = e.s, e.m.encrypt
		_, err := e.current()
		return err
	})
	if err != nil {
		return nil, err
	}
	tx.m.mu.Lock()
	defer tx.m.mu.Unlock()
	st, err := group.JoinWelcome(tx.m.cfg, w, tx.bundle, group.JoinOptions{Tree: rt, Resumed: old})
	if err != nil {
		return nil, grpcError(err)
	}
	tx.bundle.DestroyInitKey()
	tx.m.encrypt = encrypt
	return &mlsclient.HandleBranchResponse{StateId: s.add(&stateEntry{m: tx.m, s: st}), EpochAuthenticator: st.EpochAuthenticator()}, nil
}
