package group

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

func TestSnapshotRestoresTheStateExactly(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	b := f.members[1]
	// Leave some message keys half used and a proposal cached.
	for range 3 {
		m, _ := f.members[0].EncryptApplication([]byte("x"), nil)
		if _, err := b.ProcessBytes(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.ProcessBytes(f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, nil)})); err != nil {
		t.Fatal(err)
	}
	snap := snapshot(t, b)
	restored, err := Restore(f.cfg, snap)
	if err != nil {
		t.Fatal(err)
	}
	if again := snapshot(t, restored); !bytes.Equal(again, snap) {
		t.Fatal("restored state encodes differently")
	}
	// The restored state and the original behave the same.
	commit := f.commit(3, CommitOptions{IncludePending: true})
	r1, err := b.ProcessBytes(commit)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := restored.ProcessBytes(commit)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1.Commit.State.EpochAuthenticator(), r2.Commit.State.EpochAuthenticator()) {
		t.Error("original and restored states reach different epochs")
	}
	if _, err := Restore(f.cfg, snap[:len(snap)-1]); !errors.Is(err, ErrMalformedSnapshot) {
		t.Errorf("truncated snapshot: err = %v", err)
	}
}

func TestSiblingCommitsCanBothBeStagedAndEitherMerged(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c1 := f.commit(0, CommitOptions{})
	c2 := f.commit(2, CommitOptions{Encrypt: true})
	r1, err := f.members[1].ProcessBytes(c1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := f.members[1].ProcessBytes(c2)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(r1.Commit.State.EpochAuthenticator(), r2.Commit.State.EpochAuthenticator()) {
		t.Fatal("sibling epochs are identical")
	}
	// Member 3 picks the second branch; member 1 can follow it too.
	r3, err := f.members[3].ProcessBytes(c2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r2.Commit.State.EpochAuthenticator(), r3.Commit.State.EpochAuthenticator()) {
		t.Error("members disagree on the same branch")
	}
	r1.Commit.Discard()
}

func TestLateApplicationMessageFromRetainedEpoch(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	now := time.Unix(1000, 0)
	g := NewGroup(f.members[1], History{MaxEpochs: 2, MaxAge: time.Hour})
	g.Now = func() time.Time { return now }
	late, err := f.members[0].EncryptApplication([]byte("late"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		res, err := g.ProcessBytes(f.commitAdopt(2, CommitOptions{}))
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		if err := g.Merge(res.Commit); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			out, err := g.ProcessBytes(late)
			if err != nil || string(out.ApplicationData) != "late" {
				t.Fatalf("late message one epoch back: %q, %v", out.ApplicationData, err)
			}
		}
	}
	if g.History.Len() != 2 {
		t.Errorf("history keeps %d epochs, want 2", g.History.Len())
	}
	late2, _ := f.members[0].EncryptApplication([]byte("too late"), nil)
	if _, err := g.ProcessBytes(late2); !errors.Is(err, ErrWrongEpoch) {
		t.Errorf("message from an expired epoch: err = %v", err)
	}
	now = now.Add(2 * time.Hour)
	g.History.Expire(now)
	if g.History.Len() != 0 {
		t.Errorf("history keeps %d epochs after MaxAge", g.History.Len())
	}
}

// commitAdopt has member i commit and move to the new epoch.
func (f *fixture) commitAdopt(i int, opts CommitOptions) []byte {
	f.t.Helper()
	sc, err := f.members[i].Commit(opts)
	if err != nil {
		f.t.Fatalf("creating commit: %v", err)
	}
	f.members[i] = sc.State
	return sc.Message
}

func TestExternalJoinAndResync(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	gi, err := f.members[0].GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	gi = decodeGroupInfo(t, codec.MustMarshal(gi))
	erin := newTestBundle(t, f.cfg, "erin", nil)
	sc, err := JoinExternal(f.cfg, gi, erin.Signer, ExternalJoinOptions{Credential: erin.KeyPackage.LeafNode.Credential})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		res, err := f.members[i].ProcessBytes(sc.Message)
		if err != nil {
			t.Fatalf("member %d: %v", i, err)
		}
		if !bytes.Equal(res.Commit.State.EpochAuthenticator(), sc.State.EpochAuthenticator()) {
			t.Errorf("member %d disagrees with the joiner", i)
		}
		f.members[i] = res.Commit.State
	}
	// Carol lost her state and resyncs: she joins again, removing her old leaf.
	gi, _ = f.members[0].GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
	old := LeafIndex(2)
	carol2 := newTestBundle(t, f.cfg, "carol", nil)
	sc2, err := JoinExternal(f.cfg, gi, carol2.Signer, ExternalJoinOptions{Credential: carol2.KeyPackage.LeafNode.Credential, Resync: &old})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.members[1].ProcessBytes(sc2.Message)
	if err != nil {
		t.Fatal(err)
	}
	if res.Commit.State.Tree().Members() != 5 || sc2.State.OwnLeaf() != 2 {
		t.Errorf("after resync: %d members, carol at %d", res.Commit.State.Tree().Members(), sc2.State.OwnLeaf())
	}
}

func decodeGroupInfo(t *testing.T, b []byte) *wire.GroupInfo {
	t.Helper()
	var gi wire.GroupInfo
	if err := codec.Unmarshal(b, &gi); err != nil {
		t.Fatal(err)
	}
	return &gi
}

func TestExternalProposals(t *testing.T) {
	sender, _ := testSuite.GenerateSignatureKey(nil)
	ext := wire.Extensions{{Type: wire.ExtensionExternalSenders, Data: codec.MustMarshal(wire.ExternalSenders{{SignatureKey: sender.PublicKey(), Credential: wire.NewBasicCredential([]byte("server"))}})}}
	f := newFixture(t, fixtureOptions{extensions: ext})
	s := f.members[1]
	msg, err := ExternalProposal(testSuite, s.GroupID(), s.Epoch(), 0, sender, &wire.Remove{Removed: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.ProcessBytes(msg)
	if err != nil {
		t.Fatalf("external remove: %v", err)
	}
	if res.Sender.Type != wire.SenderExternal {
		t.Errorf("sender type %d", res.Sender.Type)
	}
	// An Update may not come from an external sender.
	if _, err := ExternalProposal(testSuite, s.GroupID(), s.Epoch(), 0, sender, &wire.Update{}, nil); !errors.Is(err, ErrInvalidSenderType) {
		t.Errorf("external update: err = %v", err)
	}
	// A new member proposes itself.
	erin := newTestBundle(t, f.cfg, "erin", nil)
	msg, err = NewMemberAddProposal(s.GroupID(), s.Epoch(), erin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ProcessBytes(msg); err != nil {
		t.Fatalf("new member proposal: %v", err)
	}
	// B commits both by reference.
	sc, err := s.Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Added) != 1 || len(sc.Removed) != 1 {
		t.Errorf("added %v removed %v", sc.Added, sc.Removed)
	}
	joined, err := JoinWelcome(f.cfg, sc.Welcome, erin, JoinOptions{Tree: sc.State.Tree().Wire()})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(joined.EpochAuthenticator(), sc.State.EpochAuthenticator()) {
		t.Error("joiner disagrees")
	}
}

func TestReInitAndBranch(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	ri := &wire.ReInit{GroupID: []byte("fixture-v2"), Version: wire.MLS10, CipherSuite: testSuite}
	sc, err := f.members[0].Commit(CommitOptions{Proposals: []wire.Proposal{ri}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.members[1].ProcessBytes(sc.Message)
	if err != nil {
		t.Fatal(err)
	}
	a, b := sc.State, res.Commit.State
	if b.PendingReInit() == nil {
		t.Fatal("ReInit not pending after its commit")
	}
	if _, err := b.EncryptApplication([]byte("x"), nil); !errors.Is(err, ErrReInitPending) {
		t.Errorf("sending during reinit: err = %v", err)
	}
	bobKP := newTestBundle(t, f.cfg, "bob", nil)
	fresh, sc2, err := a.ReInitGroup(newTestBundle(t, f.cfg, "alice", nil), ResumedGroupOptions{KeyPackages: []*wire.KeyPackage{bobKP.KeyPackage}, WelcomeWithTree: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = fresh
	joined, err := JoinWelcome(f.cfg, sc2.Welcome, bobKP, JoinOptions{Resumed: b})
	if err != nil {
		t.Fatalf("joining the reinitialized group: %v", err)
	}
	if !bytes.Equal(joined.EpochAuthenticator(), sc2.State.EpochAuthenticator()) || joined.Epoch() != 1 {
		t.Error("reinitialized group disagrees")
	}
	// Without the old group's state the resumption PSK is missing.
	bobKP2 := newTestBundle(t, f.cfg, "bob", nil)
	_, sc3, err := a.ReInitGroup(newTestBundle(t, f.cfg, "alice", nil), ResumedGroupOptions{KeyPackages: []*wire.KeyPackage{bobKP2.KeyPackage}, WelcomeWithTree: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinWelcome(f.cfg, sc3.Welcome, bobKP2, JoinOptions{}); !errors.Is(err, ErrMissingPSK) {
		t.Errorf("reinit join without the old state: err = %v", err)
	}

	// Branch: a subgroup of A, C from the epoch-1 group.
	g := newFixture(t, fixtureOptions{})
	carolKP := newTestBundle(t, g.cfg, "carol", nil)
	_, bsc, err := g.members[0].Branch(newTestBundle(t, g.cfg, "alice", nil), ResumedGroupOptions{GroupID: []byte("side"), KeyPackages: []*wire.KeyPackage{carolKP.KeyPackage}, WelcomeWithTree: true})
	if err != nil {
		t.Fatal(err)
	}
	sub, err := JoinWelcome(g.cfg, bsc.Welcome, carolKP, JoinOptions{Resumed: g.members[2]})
	if err != nil {
		t.Fatalf("joining the branch: %v", err)
	}
	if !bytes.Equal(sub.EpochAuthenticator(), bsc.State.EpochAuthenticator()) {
		t.Error("branch disagrees")
	}
}

// A PrivateMessage commit that arrives before a proposal it refers to is
// refused without using up its key, and processes once the proposal is in.
func TestEncryptedCommitBeforeItsProposalProcessesLater(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	prop, _, err := f.members[2].Propose(&wire.Remove{Removed: 3}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.members[0].ProcessBytes(prop); err != nil {
		t.Fatal(err)
	}
	commit := f.commit(0, CommitOptions{IncludePending: true, Encrypt: true})
	before := snapshot(t, f.members[1])
	if _, err := f.members[1].ProcessBytes(commit); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("commit before its proposal: err = %v", err)
	}
	if !bytes.Equal(snapshot(t, f.members[1]), before) {
		t.Fatal("the refused commit changed the state")
	}
	if _, err := f.members[1].ProcessBytes(prop); err != nil {
		t.Fatal(err)
	}
	res, err := f.members[1].ProcessBytes(commit)
	if err != nil {
		t.Fatalf("commit after its proposal: %v", err)
	}
	if len(res.Commit.Removed) != 1 {
		t.Errorf("removed %v", res.Commit.Removed)
	}
}

// A member removed by a commit that also adds someone into its freed leaf
// learns that it was removed.
func TestRemovedMemberWhoseLeafIsReusedLearnsItWasRemoved(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	erin := newTestBundle(t, f.cfg, "erin", nil)
	sc, err := f.members[0].Commit(CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 1}, &wire.Add{KeyPackage: *erin.KeyPackage}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Added) != 1 || sc.Added[0] != 1 {
		t.Fatalf("erin added at %v, want leaf 1", sc.Added)
	}
	res, err := f.members[1].ProcessBytes(sc.Message)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Commit.SelfRemoved || res.Commit.State != nil {
		t.Error("removed member does not learn it was removed")
	}
}

// Destroying the epoch in which an own Update was proposed must not delete
// the leaf key the next epoch adopted from it.
func TestOwnUpdateKeySurvivesTheParentEpochsDestruction(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	prop, _, err := f.members[1].Propose(&wire.Update{}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{0, 2} {
		if _, err := f.members[i].ProcessBytes(prop); err != nil {
			t.Fatal(err)
		}
	}
	commit := f.commit(0, CommitOptions{IncludePending: true})
	res, err := f.members[1].ProcessBytes(commit)
	if err != nil {
		t.Fatal(err)
	}
	f.members[1].Destroy()
	next := res.Commit.State
	// Member 2 commits: member 1 must decrypt the path with its new key.
	f.members[2] = mustProcess(t, f.members[2], commit)
	c2, err := f.members[2].Commit(CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := next.ProcessBytes(c2.Message); err != nil {
		t.Fatalf("after the parent epoch was destroyed: %v", err)
	}
}

func mustProcess(t *testing.T, s *State, msg []byte) *State {
	t.Helper()
	res, err := s.ProcessBytes(msg)
	if err != nil {
		t.Fatal(err)
	}
	return res.Commit.State
}

func TestAcceptCanRejectAnAuthenticatedMessageWithoutEffect(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	b := f.members[1]
	before := snapshot(t, b)
	m, err := f.members[0].EncryptApplication([]byte("from a member the app no longer trusts"), nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := errors.New("refused by policy")
	var saw wire.Sender
	_, err = b.ProcessBytesWith(m, ProcessOptions{Accept: func(s wire.Sender, ct wire.ContentType) error {
		saw = s
		if ct != wire.ContentApplication {
			t.Errorf("content type %d", ct)
		}
		return refused
	}})
	if !errors.Is(err, refused) {
		t.Fatalf("err = %v, want the Accept error", err)
	}
	if saw.Type != wire.SenderMember || saw.Index != 0 {
		t.Errorf("Accept saw sender %+v, want member 0", saw)
	}
	if !bytes.Equal(snapshot(t, b), before) {
		t.Fatal("a refused message changed the state")
	}
	// The key was not consumed: the same message still decrypts.
	r, err := b.ProcessBytes(m)
	if err != nil || string(r.ApplicationData) != "from a member the app no longer trusts" {
		t.Fatalf("after a refusal: %v", err)
	}
	// A refused proposal is not cached.
	p := f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, nil)})
	if _, err := b.ProcessBytesWith(p, ProcessOptions{Accept: func(wire.Sender, wire.ContentType) error { return refused }}); !errors.Is(err, refused) {
		t.Fatalf("proposal: err = %v", err)
	}
	if n := b.PendingProposals(); n != 0 {
		t.Errorf("%d proposals cached after a refusal", n)
	}
}

// A cached Add of a client already in the group, or a second Add of one
// client, is invalid in a commit (§12.2): IncludePending leaves it out
// and commits the valid proposals cached beside it, and the members
// accept the commit.
func TestIncludePendingLeavesOutAddsThatWouldMakeTheListInvalid(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	kp := func(signer *suite.SignaturePrivateKey, name string) *wire.KeyPackage {
		b, err := NewKeyPackage(testSuite, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(name)), Rand: f.cfg.Rand})
		if err != nil {
			t.Fatal(err)
		}
		return b.KeyPackage
	}
	erinKey, err := testSuite.GenerateSignatureKey(f.cfg.Rand)
	if err != nil {
		t.Fatal(err)
	}
	erin1, erin2 := kp(erinKey, "erin"), kp(erinKey, "erin")
	// bob (leaf 1) again, with a fresh KeyPackage of his own key; then
	// erin twice; then a valid Remove of dave.
	for i, p := range []wire.Proposal{
		&wire.Add{KeyPackage: *kp(f.members[1].signer, "bob")},
		&wire.Add{KeyPackage: *erin1},
		&wire.Add{KeyPackage: *erin2},
		&wire.Remove{Removed: 3},
	} {
		from := 1 + i%2
		msg, _, err := f.members[from].Propose(p, false, nil)
		if err != nil {
			t.Fatalf("proposal %d: %v", i, err)
		}
		f.deliver(from, msg)
	}
	if n := f.members[0].PendingProposals(); n != 4 {
		t.Fatalf("%d proposals cached, want 4", n)
	}
	sc, err := f.members[0].Commit(CommitOptions{IncludePending: true})
	if err != nil {
		t.Fatalf("commit with a cached Add of a member: %v", err)
	}
	var got []string
	for _, ap := range sc.Proposals {
		switch p := ap.Proposal.(type) {
		case *wire.Add:
			got = append(got, "add "+string(p.KeyPackage.LeafNode.Credential.Identity))
			if !bytes.Equal(p.KeyPackage.InitKey, erin1.InitKey) {
				t.Errorf("the commit adds erin by her second KeyPackage, want the first")
			}
		case *wire.Remove:
			got = append(got, fmt.Sprintf("remove %d", p.Removed))
		}
	}
	if want := []string{"remove 3", "add erin"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("committed %v, want %v", got, want)
	}
	for i := 1; i <= 2; i++ {
		res, err := f.members[i].ProcessBytes(sc.Message)
		if err != nil {
			t.Fatalf("member %d refuses the commit: %v", i, err)
		}
		if !bytes.Equal(res.Commit.State.EpochAuthenticator(), sc.State.EpochAuthenticator()) {
			t.Errorf("member %d reaches another epoch", i)
		}
	}
	// With the whole cache valid, nothing is left out.
	g := newFixture(t, fixtureOptions{})
	msg, _, err := g.members[1].Propose(&wire.Remove{Removed: 3}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	g.deliver(1, msg)
	if sc, err := g.members[0].Commit(CommitOptions{IncludePending: true}); err != nil || len(sc.Proposals) != 1 {
		t.Fatalf("commit of a valid cache: %v", err)
	}
}
