package server

import (
	"bytes"
	"context"
	"fmt"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/wire"
)

// handleProposals processes proposal messages in the state's epoch and
// returns their ProposalRefs. Messages the state sent or already
// processed are recognised, not processed again.
func handleProposals(e *stateEntry, st *group.State, msgs [][]byte) ([][]byte, error) {
	refs := make([][]byte, 0, len(msgs))
	for i, msg := range msgs {
		if ref, ok := e.known[string(msg)]; ok {
			refs = append(refs, ref)
			continue
		}
		p, err := st.ProcessBytes(msg)
		if err != nil {
			return nil, fmt.Errorf("proposal %d: %w", i, err)
		}
		if p.Proposal == nil {
			return nil, fmt.Errorf("%w: proposal %d is a %v message", ErrBadRequest, i, p.ContentType)
		}
		e.remember(msg, p.ProposalRef)
		refs = append(refs, p.ProposalRef)
	}
	return refs, nil
}

// Commit creates and stages a commit of the listed proposals without
// advancing the state; HandlePendingCommit adopts it.
func (s *Server) Commit(_ context.Context, req *mlsclient.CommitRequest) (*mlsclient.CommitResponse, error) {
	resp := &mlsclient.CommitResponse{}
	err := s.withState(req.StateId, func(e *stateEntry) error {
		st, err := e.current()
		if err != nil {
			return err
		}
		refs, err := handleProposals(e, st, req.ByReference)
		if err != nil {
			return err
		}
		var byValue []wire.Proposal
		for i, d := range req.ByValue {
			p, err := describedProposal(d, st.Suite(), st.GroupID(), func() wire.RatchetTree { return st.Tree().Wire() })
			if err != nil {
				return fmt.Errorf("by_value %d: %w", i, err)
			}
			byValue = append(byValue, p)
		}
		sc, err := st.Commit(group.CommitOptions{
			Proposals:       byValue,
			ByReference:     refs,
			ForcePath:       req.ForcePath,
			Encrypt:         e.m.encrypt,
			WelcomeWithTree: !req.ExternalTree,
		})
		if err != nil {
			return err
		}
		if resp.Welcome, err = encodeMessage(sc.Welcome); err != nil {
			return err
		}
		if resp.RatchetTree, err = ratchetTreeOf(sc.State, req.ExternalTree); err != nil {
			return err
		}
		if e.pending != nil {
			e.pending.Discard()
		}
		e.pending, e.pendingMsg = sc, sc.Message
		resp.Commit = sc.Message
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// ReInitCommit commits a ReInit proposal; it is Commit under another name.
func (s *Server) ReInitCommit(ctx context.Context, req *mlsclient.CommitRequest) (*mlsclient.CommitResponse, error) {
	return s.Commit(ctx, req)
}

// adoptPending takes the state's own staged commit as its next epoch.
func adoptPending(e *stateEntry) (*group.State, error) {
	if _, err := e.current(); err != nil {
		return nil, err
	}
	if e.pending == nil {
		return nil, ErrNoPendingCommit
	}
	return e.pending.State, nil
}

// handleCommit processes a commit (and the proposals it refers to) from
// another member and returns the next epoch. A member handed its own
// pending commit adopts it.
func handleCommit(e *stateEntry, proposals [][]byte, commit []byte) (*group.State, error) {
	st, err := e.current()
	if err != nil {
		return nil, err
	}
	if e.pending != nil && bytes.Equal(commit, e.pendingMsg) {
		return e.pending.State, nil
	}
	if _, err := handleProposals(e, st, proposals); err != nil {
		return nil, err
	}
	p, err := st.ProcessBytes(commit)
	if err != nil {
		return nil, err
	}
	if p.Commit == nil {
		return nil, fmt.Errorf("%w: commit is a %v message", ErrBadRequest, p.ContentType)
	}
	if p.Commit.State == nil {
		return nil, ErrRemoved
	}
	return p.Commit.State, nil
}

// HandleCommit processes another member's commit and returns the new
// epoch's state id.
func (s *Server) HandleCommit(_ context.Context, req *mlsclient.HandleCommitRequest) (*mlsclient.HandleCommitResponse, error) {
	return s.nextEpoch(req.StateId, func(e *stateEntry) (*group.State, error) {
		return handleCommit(e, req.Proposal, req.Commit)
	})
}

// HandlePendingCommit adopts the member's own staged commit.
func (s *Server) HandlePendingCommit(_ context.Context, req *mlsclient.HandlePendingCommitRequest) (*mlsclient.HandleCommitResponse, error) {
	return s.nextEpoch(req.StateId, adoptPending)
}

func (s *Server) nextEpoch(id uint32, next func(e *stateEntry) (*group.State, error)) (*mlsclient.HandleCommitResponse, error) {
	resp := &mlsclient.HandleCommitResponse{}
	err := s.withState(id, func(e *stateEntry) error {
		st, err := next(e)
		if err != nil {
			return err
		}
		s.supersede(e, st)
		resp.StateId = s.add(&stateEntry{m: e.m, s: st})
		resp.EpochAuthenticator = st.EpochAuthenticator()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// supersede marks e as replaced by next and keeps its State for late
// application messages. The member must be locked.
func (s *Server) supersede(e *stateEntry, next *group.State) {
	if e.pending != nil && e.pending.State != next {
		e.pending.Discard()
	}
	e.pending, e.pendingMsg, e.known = nil, nil, nil
	e.superseded = true
	e.m.retire(e.s)
}
