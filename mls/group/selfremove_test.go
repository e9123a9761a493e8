package group

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// The SelfRemove proposal of draft-ietf-mls-extensions-09 (selfremove.go
// lists its rules): a member leaves, another member or an external joiner
// commits its proposal, and each rule the draft states has a message that
// breaks only it.

// rawSelfRemove frames and signs a SelfRemove from member i without the
// sender's checks, as a PublicMessage or a PrivateMessage.
func (f *fixture) rawSelfRemove(i int, encrypt bool, authenticatedData []byte) []byte {
	f.t.Helper()
	s := f.members[i]
	content := s.newContent(wire.ContentProposal, authenticatedData)
	content.Proposal = &wire.SelfRemove{}
	sig, err := framing.Sign(s.cs, s.signer, wireFormat(encrypt), &content, s.ctxEnc, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := s.frame(&content, &wire.FramedContentAuthData{Signature: sig}, encrypt)
	if err != nil {
		f.t.Fatal(err)
	}
	return codec.MustMarshal(m)
}

// deliver has every member but from process the proposal msg; it returns
// the ProposalRef.
func (f *fixture) deliver(from int, msg []byte) []byte {
	f.t.Helper()
	var ref []byte
	for i, s := range f.members {
		if i == from {
			continue
		}
		res, err := s.ProcessBytes(msg)
		if err != nil {
			f.t.Fatalf("member %d: %v", i, err)
		}
		ref = res.ProposalRef
	}
	return ref
}

// selfRemove has member i propose a SelfRemove that every other member
// receives; it returns the message and its ProposalRef.
func (f *fixture) selfRemove(i int) (msg, ref []byte) {
	f.t.Helper()
	msg, ref, err := f.members[i].ProposeSelfRemove(nil)
	if err != nil {
		f.t.Fatalf("ProposeSelfRemove: %v", err)
	}
	if got := f.deliver(i, msg); !bytes.Equal(got, ref) {
		f.t.Fatalf("receivers' ProposalRef %x, sender's %x", got, ref)
	}
	return msg, ref
}

// adoptAll has every member but the committer process msg. The members
// it removes must see that they were; the others must agree with the
// committer's new epoch, whose State they take.
func (f *fixture) adoptAll(committer int, sc *StagedCommit) {
	f.t.Helper()
	removed := map[LeafIndex]bool{}
	for _, l := range sc.Removed {
		removed[l] = true
	}
	for i, s := range f.members {
		if i == committer || s == nil {
			continue
		}
		res, err := s.ProcessBytes(sc.Message)
		if err != nil {
			f.t.Fatalf("member %d: %v", i, err)
		}
		if got, want := res.Commit.SelfRemoved, removed[s.OwnLeaf()]; got != want {
			f.t.Fatalf("member %d: SelfRemoved = %v, want %v", i, got, want)
		}
		if removed[s.OwnLeaf()] {
			if res.Commit.State != nil {
				f.t.Fatalf("removed member %d has a next epoch", i)
			}
			f.members[i] = nil
			continue
		}
		if !bytes.Equal(res.Commit.State.EpochAuthenticator(), sc.State.EpochAuthenticator()) {
			f.t.Fatalf("member %d disagrees with the committer", i)
		}
		f.members[i] = res.Commit.State
	}
	if committer >= 0 {
		f.members[committer] = sc.State
	}
}

func proposalTypes(sc *StagedCommit) []wire.ProposalType {
	var out []wire.ProposalType
	for _, p := range sc.Proposals {
		out = append(out, p.Proposal.ProposalType())
	}
	return out
}

func TestSelfRemoveIsCommittedByAnotherMember(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if !f.members[1].SelfRemoveCapable() {
		t.Fatal("a group of default members is not self-remove-capable")
	}
	msg, _ := f.selfRemove(1)
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil || m.WireFormat != wire.WireFormatPublicMessage {
		t.Fatalf("SelfRemove sent as wire format %d (%v), want a PublicMessage", m.WireFormat, err)
	}
	if got := f.members[1].PendingCommittable(); got != 0 {
		t.Errorf("leaving member: PendingCommittable = %d, want 0 (its own SelfRemove)", got)
	}
	if got := f.members[2].PendingCommittable(); got != 1 {
		t.Errorf("other member: PendingCommittable = %d, want 1", got)
	}
	// The ordinary commit of pending proposals picks it up.
	sc, err := f.members[2].Commit(CommitOptions{IncludePending: true, Encrypt: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Removed) != 1 || sc.Removed[0] != 1 || !sc.HasPath {
		t.Fatalf("removed %v, path %v; want leaf 1 removed with a path", sc.Removed, sc.HasPath)
	}
	f.adoptAll(2, sc)
	if f.members[1] != nil {
		t.Fatal("the leaving member did not learn it was removed")
	}
	for _, i := range []int{0, 2, 3} {
		if f.members[i].Tree().Leaf(1) != nil {
			t.Errorf("member %d still has leaf 1", i)
		}
	}
}

func TestSelfRemoveSurvivesASnapshotOfTheCommitter(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.selfRemove(3)
	restored, err := Restore(f.cfg, snapshot(t, f.members[0]))
	if err != nil {
		t.Fatal(err)
	}
	f.members[0] = restored
	sc, err := restored.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Removed) != 1 || sc.Removed[0] != 3 {
		t.Fatalf("removed %v, want [3]", sc.Removed)
	}
	f.adoptAll(0, sc)
}

func TestSenderRulesOfSelfRemove(t *testing.T) {
	t.Run("at most one per epoch", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		f.selfRemove(1)
		if _, _, err := f.members[1].ProposeSelfRemove(nil); !errors.Is(err, ErrSelfRemoveSent) {
			t.Errorf("second SelfRemove: err = %v, want %v", err, ErrSelfRemoveSent)
		}
	})
	t.Run("never encrypted", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		if _, _, err := f.members[1].Propose(&wire.SelfRemove{}, true, nil); !errors.Is(err, ErrSelfRemoveEncrypted) {
			t.Errorf("encrypted SelfRemove: err = %v, want %v", err, ErrSelfRemoveEncrypted)
		}
	})
	t.Run("not by an external sender", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		sender, _ := testSuite.GenerateSignatureKey(nil)
		s := f.members[1]
		if _, err := ExternalProposal(testSuite, s.GroupID(), s.Epoch(), 0, sender, &wire.SelfRemove{}, nil); !errors.Is(err, ErrInvalidSenderType) {
			t.Errorf("external SelfRemove: err = %v, want %v", err, ErrInvalidSenderType)
		}
	})
	t.Run("not its own", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		_, ref := f.selfRemove(1)
		if _, err := f.members[1].Commit(CommitOptions{ByReference: [][]byte{ref}}); !errors.Is(err, ErrCommitterRemoved) {
			t.Errorf("committing its own SelfRemove: err = %v, want %v", err, ErrCommitterRemoved)
		}
	})
	t.Run("not by value", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		if _, err := f.members[0].Commit(CommitOptions{Proposals: []wire.Proposal{&wire.SelfRemove{}}}); !errors.Is(err, ErrSelfRemoveByValue) {
			t.Errorf("SelfRemove by value: err = %v, want %v", err, ErrSelfRemoveByValue)
		}
	})
	t.Run("not beside a Remove of its leaf", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		_, ref := f.selfRemove(1)
		_, err := f.members[0].Commit(CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 1}}, ByReference: [][]byte{ref}})
		if !errors.Is(err, ErrDuplicateLeafChange) {
			t.Errorf("SelfRemove and Remove of leaf 1: err = %v, want %v", err, ErrDuplicateLeafChange)
		}
	})
}

// withoutSelfRemove adds to f's group a member erin (leaf 4) whose
// capabilities lack self_remove.
func withoutSelfRemove(f *fixture) {
	caps := DefaultCapabilities()
	caps.Proposals = nil
	erin := newTestBundle(f.t, f.cfg, "erin", &caps)
	f.advance(0, CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *erin.KeyPackage}}}, erin)
}

func TestSelfRemoveNeedsEveryRemainingMembersSupport(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	withoutSelfRemove(f)
	if f.members[1].SelfRemoveCapable() {
		t.Fatal("group with erin is self-remove-capable")
	}
	if _, _, err := f.members[1].ProposeSelfRemove(nil); !errors.Is(err, ErrSelfRemoveUnsupported) {
		t.Fatalf("ProposeSelfRemove: err = %v, want %v", err, ErrSelfRemoveUnsupported)
	}
	// One sent anyway is received, but no commit that keeps erin holds it.
	ref := f.deliver(1, f.rawSelfRemove(1, false, nil))
	bob := f.members[1] // who keeps what it sent, as Propose would
	bob.proposals = append(bob.proposals, &cachedProposal{ref: ref, proposal: &wire.SelfRemove{}, sender: wire.MemberSender(1)})
	if _, err := f.members[0].Commit(CommitOptions{ByReference: [][]byte{ref}}); !errors.Is(err, ErrUnsupportedByMembers) {
		t.Errorf("commit keeping erin: err = %v, want %v", err, ErrUnsupportedByMembers)
	}
	msg := f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
		c.Proposals = append(c.Proposals, wire.ProposalOrRef{Reference: ref})
	}})
	for _, r := range []int{2, 3, 4} {
		f.expectRejected(r, msg, ErrUnsupportedByMembers)
	}
	// The pending proposals leave it out while erin stays ...
	sc, err := f.members[0].Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Proposals) != 0 {
		t.Errorf("pending proposals committed: %v", proposalTypes(sc))
	}
	sc.Discard()
	// ... and hold it when the commit removes erin, who need not support it.
	sc, err = f.members[0].Commit(CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 4}}, IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Removed) != 2 {
		t.Fatalf("removed %v, want erin and bob", sc.Removed)
	}
	f.adoptAll(0, sc)
}

// Pending proposals for the leaving member's leaf: its SelfRemove wins
// over a Remove ("the Remove proposal is invalid") and over its Update.
func TestPendingSelfRemoveWinsOverOtherChangesOfItsLeaf(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	upd, _, err := f.members[1].Propose(&wire.Update{}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(1, upd)
	rm, _, err := f.members[3].Propose(&wire.Remove{Removed: 1}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(3, rm)
	_, ref := f.selfRemove(1)
	sc, err := f.members[2].Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Proposals) != 1 || !bytes.Equal(sc.Proposals[0].Ref, ref) {
		t.Fatalf("committed %v, want the SelfRemove alone", proposalTypes(sc))
	}
	f.adoptAll(2, sc)
}

// Each rule a receiver applies to a SelfRemove or a commit holding one:
// the message breaks that rule only.
func TestSelfRemoveRules(t *testing.T) {
	cases := []struct {
		name      string
		msg       func(f *fixture, server *suite.SignaturePrivateKey) []byte
		receivers []int
		want      []error
	}{
		{"sent in a PrivateMessage", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			return f.rawSelfRemove(1, true, nil)
		}, []int{0, 2, 3}, []error{ErrSelfRemoveEncrypted}},
		{"sent by an external sender", func(f *fixture, server *suite.SignaturePrivateKey) []byte {
			return selfRemoveFrom(f, server, wire.SenderExternal)
		}, []int{0, 1, 2, 3}, []error{ErrInvalidSenderType}},
		{"sent as a new_member_proposal", func(f *fixture, server *suite.SignaturePrivateKey) []byte {
			return selfRemoveFrom(f, server, wire.SenderNewMemberProposal)
		}, []int{0, 1, 2, 3}, []error{ErrInvalidSenderType}},
		{"committed by value", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			return f.commit(0, CommitOptions{tamper: appendProposals(&wire.SelfRemove{})})
		}, []int{1, 2, 3}, []error{ErrSelfRemoveByValue}},
		{"committed by its sender", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			_, ref := f.selfRemove(1)
			return f.commit(1, CommitOptions{tamper: func(c *wire.Commit) {
				c.Proposals = append(c.Proposals, wire.ProposalOrRef{Reference: ref})
			}})
		}, []int{0, 2, 3}, []error{ErrCommitterRemoved}},
		{"committed without a path", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			_, ref := f.selfRemove(1)
			return f.commit(0, CommitOptions{ByReference: [][]byte{ref}, tamper: func(c *wire.Commit) { c.Path = nil }})
		}, []int{2, 3}, []error{ErrPathRequired}},
		{"committed with a Remove of its leaf", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			_, ref := f.selfRemove(1)
			return f.commit(0, CommitOptions{ByReference: [][]byte{ref}, tamper: appendProposals(&wire.Remove{Removed: 1})})
		}, []int{2, 3}, []error{ErrDuplicateLeafChange}},
		{"committed with an Update of its leaf", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			upd, _, err := f.members[1].Propose(&wire.Update{}, false, nil)
			if err != nil {
				f.t.Fatal(err)
			}
			updRef := f.deliver(1, upd)
			_, ref := f.selfRemove(1)
			return f.commit(0, CommitOptions{ByReference: [][]byte{ref}, tamper: func(c *wire.Commit) {
				c.Proposals = append(c.Proposals, wire.ProposalOrRef{Reference: updRef})
			}})
		}, []int{2, 3}, []error{ErrDuplicateLeafChange}},
		{"two of one member committed", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			first := f.deliver(1, f.rawSelfRemove(1, false, []byte("first")))
			second := f.deliver(1, f.rawSelfRemove(1, false, []byte("second")))
			return f.commit(0, CommitOptions{ByReference: [][]byte{first}, tamper: func(c *wire.Commit) {
				c.Proposals = append(c.Proposals, wire.ProposalOrRef{Reference: second})
			}})
		}, []int{2, 3}, []error{ErrDuplicateLeafChange}},
		{"committed beside a ReInit", func(f *fixture, _ *suite.SignaturePrivateKey) []byte {
			_, ref := f.selfRemove(1)
			return f.commit(0, CommitOptions{ByReference: [][]byte{ref},
				tamper: appendProposals(&wire.ReInit{GroupID: []byte("new"), Version: wire.MLS10, CipherSuite: testSuite})})
		}, []int{2, 3}, []error{ErrReInitNotAlone}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// The group accepts proposals from an external sender, server.
			server, err := testSuite.GenerateSignatureKey(nil)
			if err != nil {
				t.Fatal(err)
			}
			ext := wire.Extensions{{Type: wire.ExtensionExternalSenders, Data: codec.MustMarshal(wire.ExternalSenders{{SignatureKey: server.PublicKey(), Credential: wire.NewBasicCredential([]byte("server"))}})}}
			f := newFixture(t, fixtureOptions{extensions: ext})
			msg := c.msg(f, server)
			for _, r := range c.receivers {
				f.expectRejected(r, msg, c.want...)
			}
		})
	}
}

func TestExternalJoinerCommitsPendingSelfRemoves(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	msg, ref := f.selfRemove(1)
	// The same proposal twice (a joiner may hear it from several members)
	// goes in once.
	sc, _, err := f.externalCommit("erin", ExternalJoinOptions{SelfRemoves: [][]byte{msg, msg}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Removed) != 1 || sc.Removed[0] != 1 {
		t.Fatalf("removed %v, want [1]", sc.Removed)
	}
	var refs int
	for _, p := range sc.Proposals {
		if p.Ref != nil {
			refs++
			if !bytes.Equal(p.Ref, ref) {
				t.Errorf("reference %x, want the SelfRemove's %x", p.Ref, ref)
			}
		}
	}
	if refs != 1 {
		t.Errorf("%d references, want 1", refs)
	}
	f.adoptAll(-1, sc)
	if f.members[1] != nil {
		t.Fatal("the leaving member did not learn it was removed")
	}
}

// A joiner checks what it is given as a member would, but for the
// membership_tag, which it cannot verify.
func TestJoinerValidatesPendingSelfRemoves(t *testing.T) {
	republished := func(edit func(*wire.PublicMessage)) func(f *fixture) []byte {
		return func(f *fixture) []byte {
			msg, _ := f.selfRemove(1)
			var m wire.MLSMessage
			if err := codec.Unmarshal(msg, &m); err != nil {
				f.t.Fatal(err)
			}
			edit(m.PublicMessage)
			return codec.MustMarshal(&m)
		}
	}
	cases := []struct {
		name string
		msg  func(f *fixture) []byte
		want error // nil: accepted
	}{
		{"bad signature", republished(func(pm *wire.PublicMessage) { pm.Auth.Signature[0] ^= 1 }), ErrBadSignature},
		{"bad membership tag", republished(func(pm *wire.PublicMessage) { pm.MembershipTag[0] ^= 1 }), nil},
		{"another epoch", republished(func(pm *wire.PublicMessage) { pm.Content.Epoch-- }), ErrWrongEpoch},
		{"another group", republished(func(pm *wire.PublicMessage) { pm.Content.GroupID = []byte("other") }), ErrWrongGroup},
		{"a blank leaf", republished(func(pm *wire.PublicMessage) { pm.Content.Sender.Index = 9 }), ErrUnknownSender},
		{"a PrivateMessage", func(f *fixture) []byte { return f.rawSelfRemove(1, true, nil) }, ErrSelfRemoveEncrypted},
		{"a Remove", func(f *fixture) []byte {
			msg, _, err := f.members[1].Propose(&wire.Remove{Removed: 2}, false, nil)
			if err != nil {
				f.t.Fatal(err)
			}
			return msg
		}, ErrInvalidProposal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			_, _, err := f.externalCommit("erin", ExternalJoinOptions{SelfRemoves: [][]byte{c.msg(f)}})
			if c.want == nil && err != nil {
				t.Errorf("refused: %v", err)
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestExternalCommitRulesOfSelfRemove(t *testing.T) {
	t.Run("by value", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		sc, signer, err := f.externalCommit("erin", ExternalJoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		msg := f.editExternalCommit(sc.Message, signer, func(c *wire.Commit) {
			c.Proposals = append(c.Proposals, wire.ProposalOrRef{Proposal: &wire.SelfRemove{}})
		})
		f.expectRejectedByAll(msg, ErrSelfRemoveByValue)
	})
	t.Run("two of one member", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		first := f.rawSelfRemove(1, false, []byte("first"))
		second := f.rawSelfRemove(1, false, []byte("second"))
		f.deliver(1, first)
		secondRef := f.deliver(1, second)
		// The joiner takes the first.
		sc, _, err := f.externalCommit("erin", ExternalJoinOptions{SelfRemoves: [][]byte{first, second}})
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.Removed) != 1 || len(sc.Proposals) != 2 {
			t.Fatalf("joiner removed %v with %v, want leaf 1 once", sc.Removed, proposalTypes(sc))
		}
		// With both in, the list would change leaf 1 twice.
		_, _, err = f.externalCommit("erin", ExternalJoinOptions{SelfRemoves: [][]byte{first}, tamper: func(list []committedProposal) []committedProposal {
			cp := list[len(list)-1]
			cp.ref = secondRef
			return append(list, cp)
		}})
		if !errors.Is(err, ErrDuplicateLeafChange) {
			t.Fatalf("joiner: err = %v, want %v", err, ErrDuplicateLeafChange)
		}
	})
	// The joiner's duty to include the pending SelfRemoves cannot be
	// checked by members, who do not know what it was given; the leaving
	// member proposes again in the next epoch.
	t.Run("without the pending ones", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{})
		f.selfRemove(1)
		sc, _, err := f.externalCommit("erin", ExternalJoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.adoptAll(-1, sc)
		if f.members[1] == nil {
			t.Fatal("member 1 removed")
		}
		if _, _, err := f.members[1].ProposeSelfRemove(nil); err != nil {
			t.Errorf("SelfRemove in the next epoch: %v", err)
		}
	})
}

// Pending proposals gathered beside a SelfRemove listed by reference leave
// out the other changes of its leaf.
func TestListedSelfRemoveKeepsPendingRemovesOfItsLeafOut(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	rm, _, err := f.members[3].Propose(&wire.Remove{Removed: 1}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(3, rm)
	_, ref := f.selfRemove(1)
	sc, err := f.members[2].Commit(CommitOptions{ByReference: [][]byte{ref}, IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Proposals) != 1 {
		t.Fatalf("committed %v, want the SelfRemove alone", proposalTypes(sc))
	}
	f.adoptAll(2, sc)
}

// The leaving member may still commit the others' proposals; its own
// SelfRemove stays out of its commits.
func TestLeavingMembersCommitLeavesItsSelfRemoveOut(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.selfRemove(1)
	rm, _, err := f.members[3].Propose(&wire.Remove{Removed: 2}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.deliver(3, rm)
	sc, err := f.members[1].Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Removed) != 1 || sc.Removed[0] != 2 {
		t.Fatalf("removed %v, want [2]", sc.Removed)
	}
	f.adoptAll(1, sc)
}

// selfRemoveFrom is a SelfRemove signed by server as a sender of type typ
// (not a member).
func selfRemoveFrom(f *fixture, server *suite.SignaturePrivateKey, typ wire.SenderType) []byte {
	s := f.members[1]
	content := wire.FramedContent{GroupID: s.GroupID(), Epoch: s.Epoch(), Sender: wire.Sender{Type: typ},
		ContentType: wire.ContentProposal, Proposal: &wire.SelfRemove{}}
	msg, err := externalPublicMessage(testSuite, server, &content)
	if err != nil {
		f.t.Fatal(err)
	}
	return msg
}
