package server

import (
	"bytes"
	"context"
	"testing"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
)

// pair is a two-member group (alice created it, bob joined), each member
// possibly on its own Server.
type pair struct {
	t          *testing.T
	a, b       *Server // alice's and bob's
	alice, bob uint32  // their current state ids
	suite      uint32
	encrypt    bool
	groupID    []byte
}

var ctx = context.Background()

// must pairs a call's result with its error; ok fails the test on the
// error.
func must[T any](v T, err error) result[T] { return result[T]{v, err} }

type result[T any] struct {
	v   T
	err error
}

func (r result[T]) ok(t *testing.T) T {
	t.Helper()
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.v
}

// newPair makes alice's group on a and has bob join it from b.
func newPair(t *testing.T, a, b *Server, cs uint32, encrypt bool) *pair {
	t.Helper()
	p := &pair{t: t, a: a, b: b, suite: cs, encrypt: encrypt, groupID: []byte("group")}
	p.alice = must(a.CreateGroup(ctx, &mlsclient.CreateGroupRequest{GroupId: p.groupID, CipherSuite: cs, EncryptHandshake: encrypt, Identity: []byte("alice")})).ok(t).StateId
	kp := must(b.CreateKeyPackage(ctx, &mlsclient.CreateKeyPackageRequest{CipherSuite: cs, Identity: []byte("bob")})).ok(t)
	add := &mlsclient.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp.KeyPackage}
	c := must(a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice, ByValue: []*mlsclient.ProposalDescription{add}})).ok(t)
	p.alice = p.handlePending()
	j := must(b.JoinGroup(ctx, &mlsclient.JoinGroupRequest{TransactionId: kp.TransactionId, Welcome: c.Welcome, EncryptHandshake: encrypt, Identity: []byte("bob")})).ok(t)
	p.bob = j.StateId
	p.agree()
	return p
}

func (p *pair) handlePending() uint32 {
	p.t.Helper()
	return must(p.a.HandlePendingCommit(ctx, &mlsclient.HandlePendingCommitRequest{StateId: p.alice})).ok(p.t).StateId
}

func auth(t *testing.T, s *Server, id uint32) []byte {
	t.Helper()
	return must(s.StateAuth(ctx, &mlsclient.StateAuthRequest{StateId: id})).ok(t).StateAuthSecret
}

// agree checks that alice and bob are in the same epoch.
func (p *pair) agree() {
	p.t.Helper()
	if !bytes.Equal(auth(p.t, p.a, p.alice), auth(p.t, p.b, p.bob)) {
		p.t.Fatal("alice and bob disagree on the epoch authenticator")
	}
}
