package server

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

func TestCommitAdvancesNothingUntilThePendingCommitIsHandled(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		p := newPair(t, New(), New(), 1, encrypt)
		before := auth(t, p.a, p.alice)
		c := must(p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice})).ok(t)
		if got := auth(t, p.a, p.alice); !bytes.Equal(got, before) {
			t.Fatal("Commit changed the committer's epoch")
		}
		// The state can still protect messages of its epoch.
		ct := must(p.a.Protect(ctx, &mlsclient.ProtectRequest{StateId: p.alice, Plaintext: []byte("still here")})).ok(t)
		must(p.b.Unprotect(ctx, &mlsclient.UnprotectRequest{StateId: p.bob, Ciphertext: ct.Ciphertext})).ok(t)

		old := p.alice
		p.alice = p.handlePending()
		if p.alice == old {
			t.Error("the new epoch kept the old state id")
		}
		p.bob = must(p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Commit: c.Commit})).ok(t).StateId
		p.agree()
		if _, err := p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: old}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("commit on a replaced state: %v, want InvalidArgument", err)
		}
		if _, err := p.a.HandlePendingCommit(ctx, &mlsclient.HandlePendingCommitRequest{StateId: p.alice}); status.Code(err) != codes.FailedPrecondition {
			t.Errorf("HandlePendingCommit without a commit: %v, want FailedPrecondition", err)
		}
	}
}

func TestHandleCommitOfTheMembersOwnPendingCommitAdoptsIt(t *testing.T) {
	p := newPair(t, New(), New(), 1, true)
	c := must(p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice, ForcePath: true})).ok(t)
	p.alice = must(p.a.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.alice, Commit: c.Commit})).ok(t).StateId
	p.bob = must(p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Commit: c.Commit})).ok(t).StateId
	p.agree()
}

// The by-reference lists of Commit and HandleCommit may hold the member's
// own proposals, which it cannot (and need not) process; in PrivateMessages
// it could not even decrypt them.
func TestByReferenceListsMayHoldTheMembersOwnProposals(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		p := newPair(t, New(), New(), 1, encrypt)
		kp := must(p.a.CreateKeyPackage(ctx, &mlsclient.CreateKeyPackageRequest{CipherSuite: 1, Identity: []byte("carol")})).ok(t)
		mine := must(p.a.AddProposal(ctx, &mlsclient.AddProposalRequest{StateId: p.alice, KeyPackage: kp.KeyPackage})).ok(t).Proposal
		his := must(p.b.UpdateProposal(ctx, &mlsclient.UpdateProposalRequest{StateId: p.bob})).ok(t).Proposal
		refs := [][]byte{mine, his}
		c := must(p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice, ByReference: refs})).ok(t)
		p.alice = p.handlePending()
		p.bob = must(p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Proposal: refs, Commit: c.Commit})).ok(t).StateId
		p.agree()
		carol := must(p.a.JoinGroup(ctx, &mlsclient.JoinGroupRequest{TransactionId: kp.TransactionId, Welcome: c.Welcome, Identity: []byte("carol")})).ok(t)
		if !bytes.Equal(carol.EpochAuthenticator, auth(t, p.a, p.alice)) {
			t.Error("carol disagrees")
		}
	}
}

func TestHandleCommitRejectsAProposalInPlaceOfTheCommit(t *testing.T) {
	p := newPair(t, New(), New(), 1, false)
	prop := must(p.a.UpdateProposal(ctx, &mlsclient.UpdateProposalRequest{StateId: p.alice})).ok(t).Proposal
	_, err := p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Commit: prop})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("err = %v, want InvalidArgument", err)
	}
}
