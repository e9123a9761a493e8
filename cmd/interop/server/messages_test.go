package server

import (
	"bytes"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-p2p/parley/cmd/interop/mlsclient"
	"github.com/parley-p2p/parley/mls/framing"
)

func TestUnprotectReadsMessagesOfEarlierEpochs(t *testing.T) {
	p := newPair(t, New(), New(), 1, true)
	var sent [][]byte
	for range 3 {
		ct := must(p.a.Protect(ctx, &mlsclient.ProtectRequest{StateId: p.alice, AuthenticatedData: []byte{byte(len(sent))}, Plaintext: []byte("epoch message")})).ok(t)
		sent = append(sent, ct.Ciphertext)
		c := must(p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice})).ok(t)
		p.alice = p.handlePending()
		p.bob = must(p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Commit: c.Commit})).ok(t).StateId
	}
	for i := len(sent) - 1; i >= 0; i-- {
		got := must(p.b.Unprotect(ctx, &mlsclient.UnprotectRequest{StateId: p.bob, Ciphertext: sent[i]})).ok(t)
		if !bytes.Equal(got.AuthenticatedData, []byte{byte(i)}) || string(got.Plaintext) != "epoch message" {
			t.Errorf("message %d: got %q %q", i, got.AuthenticatedData, got.Plaintext)
		}
	}
}

func TestUnprotectForgetsEpochsBeyondTheHistory(t *testing.T) {
	p := newPair(t, New(), New(WithHistory(1)), 1, false)
	ct := must(p.a.Protect(ctx, &mlsclient.ProtectRequest{StateId: p.alice, Plaintext: []byte("old")})).ok(t)
	for range 2 {
		c := must(p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice})).ok(t)
		p.alice = p.handlePending()
		p.bob = must(p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Commit: c.Commit})).ok(t).StateId
	}
	if _, err := p.b.Unprotect(ctx, &mlsclient.UnprotectRequest{StateId: p.bob, Ciphertext: ct.Ciphertext}); status.Code(err) != codes.Aborted {
		t.Errorf("message of a forgotten epoch: %v, want Aborted", err)
	}
}

// Peers pad PrivateMessage content as they like; the zero padding is
// stripped whatever its length.
func TestPrivateMessagesWithAnyPaddingAreRead(t *testing.T) {
	for _, pad := range []framing.PaddingFunc{
		func(int) int { return 0 },
		func(int) int { return 1 },
		func(int) int { return 1000 },
		framing.PadTo(4096),
	} {
		p := newPair(t, New(WithPadding(pad)), New(), 3, true)
		ct := must(p.a.Protect(ctx, &mlsclient.ProtectRequest{StateId: p.alice, AuthenticatedData: []byte("ad"), Plaintext: []byte("padded")})).ok(t)
		got := must(p.b.Unprotect(ctx, &mlsclient.UnprotectRequest{StateId: p.bob, Ciphertext: ct.Ciphertext})).ok(t)
		if string(got.Plaintext) != "padded" || string(got.AuthenticatedData) != "ad" {
			t.Errorf("got %q %q", got.AuthenticatedData, got.Plaintext)
		}
		// Handshake messages are padded too.
		c := must(p.a.Commit(ctx, &mlsclient.CommitRequest{StateId: p.alice, ForcePath: true})).ok(t)
		p.alice = p.handlePending()
		p.bob = must(p.b.HandleCommit(ctx, &mlsclient.HandleCommitRequest{StateId: p.bob, Commit: c.Commit})).ok(t).StateId
		p.agree()
	}
}

func TestUnprotectRefusesHandshakeMessages(t *testing.T) {
	p := newPair(t, New(), New(), 1, true)
	prop := must(p.a.UpdateProposal(ctx, &mlsclient.UpdateProposalRequest{StateId: p.alice})).ok(t).Proposal
	if _, err := p.b.Unprotect(ctx, &mlsclient.UnprotectRequest{StateId: p.bob, Ciphertext: prop}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("err = %v, want InvalidArgument", err)
	}
}

func TestExportAgreesAcrossMembers(t *testing.T) {
	p := newPair(t, New(), New(), 2, false)
	req := func(id uint32) *mlsclient.ExportRequest {
		return &mlsclient.ExportRequest{StateId: id, Label: "test", Context: []byte("ctx"), KeyLength: 42}
	}
	a := must(p.a.Export(ctx, req(p.alice))).ok(t).ExportedSecret
	b := must(p.b.Export(ctx, req(p.bob))).ok(t).ExportedSecret
	if len(a) != 42 || !bytes.Equal(a, b) {
		t.Errorf("exports differ or have length %d", len(a))
	}
}
