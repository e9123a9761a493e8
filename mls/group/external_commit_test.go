package group

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// The rules of external commits (§12.2, §12.4.3.2): a joiner's commit holds
// exactly one ExternalInit, at most one Remove, which must replace the
// joiner's own old leaf (a resync), PreSharedKeys and nothing else, all
// inline, and it has a path. The hostile commits are made by JoinExternal
// itself with a tampered proposal list, so that each is consistent (its
// path, tree hash and confirmation tag match its list) and breaks only the
// rule under test.

// externalCommit has a joiner with a fresh signature key and a basic
// credential for name (unless opts has one) make an external commit from
// member 0's GroupInfo of this epoch.
func (f *fixture) externalCommit(name string, opts ExternalJoinOptions) (*StagedCommit, *suite.SignaturePrivateKey, error) {
	f.t.Helper()
	gi, err := f.members[0].GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
	if err != nil {
		f.t.Fatal(err)
	}
	// What a joiner gets is the encoded GroupInfo.
	var decoded wire.GroupInfo
	if err := codec.Unmarshal(codec.MustMarshal(gi), &decoded); err != nil {
		f.t.Fatal(err)
	}
	signer, err := testSuite.GenerateSignatureKey(f.cfg.Rand)
	if err != nil {
		f.t.Fatal(err)
	}
	if opts.Credential.Type == 0 {
		opts.Credential = wire.NewBasicCredential([]byte(name))
	}
	sc, err := JoinExternal(f.cfg, &decoded, signer, opts)
	return sc, signer, err
}

// mustExternalCommit is externalCommit for a commit that JoinExternal
// must make; it returns the message.
func (f *fixture) mustExternalCommit(name string, opts ExternalJoinOptions) []byte {
	f.t.Helper()
	sc, _, err := f.externalCommit(name, opts)
	if err != nil {
		f.t.Fatalf("making the external commit: %v", err)
	}
	return sc.Message
}

// expectRejectedByAll checks that every member rejects msg with want and
// keeps its state.
func (f *fixture) expectRejectedByAll(msg []byte, want ...error) {
	f.t.Helper()
	for r := range f.members {
		f.expectRejected(r, msg, want...)
	}
}

// advance has member i commit with opts and every other member adopt the
// commit; members it adds join by its Welcome, in the order of bundles.
func (f *fixture) advance(i int, opts CommitOptions, bundles ...*KeyPackageBundle) {
	f.t.Helper()
	opts.WelcomeWithTree = true
	sc, err := f.members[i].Commit(opts)
	if err != nil {
		f.t.Fatalf("creating commit: %v", err)
	}
	for j := range f.members {
		if j == i {
			continue
		}
		res, err := f.members[j].ProcessBytes(sc.Message)
		if err != nil {
			f.t.Fatalf("member %d: %v", j, err)
		}
		f.members[j] = res.Commit.State
	}
	f.members[i] = sc.State
	for _, b := range bundles {
		s, err := JoinWelcome(f.cfg, sc.Welcome, b, JoinOptions{})
		if err != nil {
			f.t.Fatal(err)
		}
		f.members = append(f.members, s)
	}
}

// asIs is a tamper function that keeps the list: it only lifts the
// joiner's own checks of the external commit rules.
func asIs(list []committedProposal) []committedProposal { return list }

func resync(l LeafIndex) *LeafIndex { return &l }

func TestExternalCommitRemovingAnotherMembersLeafIsRejected(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	// Erin, a newcomer, joins and removes Bob's leaf at once.
	msg := f.mustExternalCommit("erin", ExternalJoinOptions{Resync: resync(1), tamper: asIs})
	f.expectRejectedByAll(msg, ErrExternalRemove)
	// JoinExternal refuses to make such a commit.
	if _, _, err := f.externalCommit("erin", ExternalJoinOptions{Resync: resync(1)}); !errors.Is(err, ErrExternalRemove) {
		t.Errorf("JoinExternal removing another member: err = %v, want %v", err, ErrExternalRemove)
	}
	// The members still accept an honest join afterwards.
	ok := f.mustExternalCommit("erin", ExternalJoinOptions{})
	for r := range f.members {
		if _, err := f.members[r].ProcessBytes(ok); err != nil {
			t.Errorf("member %d rejects an honest external join: %v", r, err)
		}
	}
}

func TestExternalResyncOfOwnLeafIsAccepted(t *testing.T) {
	cases := []struct {
		name       string
		sameClient func(old, next *wire.Credential) bool
		credential wire.Credential
	}{
		{"same identity", nil, wire.NewBasicCredential([]byte("carol"))},
		{"same client by the application's rule", sameUser, wire.NewBasicCredential([]byte("carol/laptop"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.cfg.SameClient = c.sameClient
			// Carol lost her state and resyncs: she joins again with a new
			// signature key, removing her old leaf 2, and takes it over.
			sc, _, err := f.externalCommit("", ExternalJoinOptions{Credential: c.credential, Resync: resync(2)})
			if err != nil {
				t.Fatal(err)
			}
			if sc.State.OwnLeaf() != 2 {
				t.Errorf("joiner at leaf %d, want 2", sc.State.OwnLeaf())
			}
			for _, r := range []int{0, 1, 3} {
				res, err := f.members[r].ProcessBytes(sc.Message)
				if err != nil {
					t.Fatalf("member %d: %v", r, err)
				}
				if got := res.Commit.State; !bytes.Equal(got.EpochAuthenticator(), sc.State.EpochAuthenticator()) || got.Tree().Members() != 4 {
					t.Errorf("member %d: %d members, agrees with the joiner: %v", r, got.Tree().Members(),
						bytes.Equal(got.EpochAuthenticator(), sc.State.EpochAuthenticator()))
				}
			}
			// Carol's old state learns that its leaf was removed.
			res, err := f.members[2].ProcessBytes(sc.Message)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Commit.SelfRemoved {
				t.Error("the old appearance is not told it was removed")
			}
		})
	}
}

// sameUser is an application's SameClient for which "carol/laptop" is
// "carol" on another device.
func sameUser(old, next *wire.Credential) bool {
	user := func(c *wire.Credential) string { return strings.SplitN(string(c.Identity), "/", 2)[0] }
	return old.Type == wire.CredentialBasic && next.Type == wire.CredentialBasic && user(old) == user(next)
}

func TestExternalResyncWithAnotherIdentityIsRejected(t *testing.T) {
	cases := []struct {
		name       string
		sameClient func(old, next *wire.Credential) bool
		credential wire.Credential
	}{
		{"another basic identity", nil, wire.NewBasicCredential([]byte("carla"))},
		{"another credential type", nil, wire.Credential{Type: wire.CredentialX509, Certificates: [][]byte{[]byte("carol")}}},
		{"another user by the application's rule", sameUser, wire.NewBasicCredential([]byte("carla/laptop"))},
		{"refused by the application's rule", func(old, next *wire.Credential) bool { return false }, wire.NewBasicCredential([]byte("carol"))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.cfg.SameClient = c.sameClient
			msg := f.mustExternalCommit("", ExternalJoinOptions{Credential: c.credential, Resync: resync(2), tamper: asIs})
			f.expectRejectedByAll(msg, ErrExternalRemove)
			if _, _, err := f.externalCommit("", ExternalJoinOptions{Credential: c.credential, Resync: resync(2)}); !errors.Is(err, ErrExternalRemove) {
				t.Errorf("JoinExternal: err = %v, want %v", err, ErrExternalRemove)
			}
		})
	}
}

func TestExternalCommitWithTwoRemovesIsRejected(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	// Carol has a second, stale appearance at leaf 4; even removing both
	// of her own leaves takes two Removes, one too many.
	carol2 := newTestBundle(t, f.cfg, "carol", nil)
	f.advance(0, CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *carol2.KeyPackage}}}, carol2)
	msg := f.mustExternalCommit("carol", ExternalJoinOptions{Resync: resync(2), tamper: func(list []committedProposal) []committedProposal {
		return append(list, committedProposal{proposal: &wire.Remove{Removed: 4}, sender: list[0].sender})
	}})
	f.expectRejectedByAll(msg, ErrExternalCommitRemoves)
}

// The other rules of external commits.
func TestExternalCommitRules(t *testing.T) {
	cases := []struct {
		name string
		msg  func(f *fixture) []byte
		want []error
	}{
		{"no external_init", func(f *fixture) []byte {
			return f.mustExternalCommit("erin", ExternalJoinOptions{tamper: func(list []committedProposal) []committedProposal { return list[1:] }})
		}, []error{ErrExternalInitCount}},
		{"two external_inits", func(f *fixture) []byte {
			return f.mustExternalCommit("erin", ExternalJoinOptions{tamper: func(list []committedProposal) []committedProposal { return append(list, list[0]) }})
		}, []error{ErrExternalInitCount}},
		{"group_context_extensions", func(f *fixture) []byte {
			return f.mustExternalCommit("erin", ExternalJoinOptions{tamper: func(list []committedProposal) []committedProposal {
				return append(list, committedProposal{proposal: &wire.GroupContextExtensions{}, sender: list[0].sender})
			}})
		}, []error{ErrExternalCommitProposal}},
		{"add", func(f *fixture) []byte {
			kp := newTestBundle(f.t, f.cfg, "frank", nil).KeyPackage
			return f.mustExternalCommit("erin", ExternalJoinOptions{tamper: func(list []committedProposal) []committedProposal {
				return append(list, committedProposal{proposal: &wire.Add{KeyPackage: *kp}, sender: list[0].sender})
			}})
		}, []error{ErrExternalCommitProposal}},
		{"proposal by reference", func(f *fixture) []byte {
			// A PSK proposal every member has cached, which the joiner
			// could include inline.
			f.cfg.PSKs = staticPSKs{"k": []byte("secret")}
			psk := &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: []byte("k"), Nonce: f.nonce()}}
			prop, ref, err := f.members[1].Propose(psk, false, nil)
			if err != nil {
				f.t.Fatal(err)
			}
			for _, r := range []int{0, 2, 3} {
				if _, err := f.members[r].ProcessBytes(prop); err != nil {
					f.t.Fatal(err)
				}
			}
			return f.mustExternalCommit("erin", ExternalJoinOptions{tamper: func(list []committedProposal) []committedProposal {
				return append(list, committedProposal{proposal: psk, sender: wire.MemberSender(1), ref: ref})
			}})
		}, []error{ErrExternalCommitRef}},
		{"no path", func(f *fixture) []byte {
			return f.editExternalCommit(f.mustExternalCommit("erin", ExternalJoinOptions{}), nil, func(c *wire.Commit) { c.Path = nil })
		}, []error{ErrPathRequired}},
		{"resync keeps the old leaf's encryption key", func(f *fixture) []byte {
			sc, signer, err := f.externalCommit("carol", ExternalJoinOptions{Resync: resync(2)})
			if err != nil {
				f.t.Fatal(err)
			}
			return f.editExternalCommit(sc.Message, signer, func(c *wire.Commit) {
				leaf := &c.Path.LeafNode
				leaf.EncryptionKey = f.members[0].tree.Leaf(2).EncryptionKey
				if err := leaf.Sign(testSuite, signer, f.members[0].GroupID(), 2); err != nil {
					f.t.Fatal(err)
				}
			})
		}, []error{ErrCommitterKeyReused}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.expectRejectedByAll(c.msg(f), c.want...)
		})
	}
}

// editExternalCommit changes the commit of an external commit message and
// signs it again with signer (when not nil); the confirmation tag is kept.
func (f *fixture) editExternalCommit(msg []byte, signer *suite.SignaturePrivateKey, edit func(*wire.Commit)) []byte {
	f.t.Helper()
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil {
		f.t.Fatal(err)
	}
	pm := m.PublicMessage
	edit(pm.Content.Commit)
	s := f.members[0]
	if signer != nil {
		sig, err := framing.Sign(s.cs, signer, wire.WireFormatPublicMessage, &pm.Content, s.ctxEnc, nil)
		if err != nil {
			f.t.Fatal(err)
		}
		pm.Auth.Signature = sig
	}
	return codec.MustMarshal(&m)
}

func TestJoinExternalRefusesInvalidResync(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	if _, _, err := f.externalCommit("carol", ExternalJoinOptions{Resync: resync(9)}); !errors.Is(err, ErrRemoveUnknownMember) {
		t.Errorf("resync of a blank leaf: err = %v, want %v", err, ErrRemoveUnknownMember)
	}
}

func TestDefaultSameClient(t *testing.T) {
	basic := func(id string) wire.Credential { return wire.NewBasicCredential([]byte(id)) }
	x509 := func(certs ...string) wire.Credential {
		c := wire.Credential{Type: wire.CredentialX509}
		for _, s := range certs {
			c.Certificates = append(c.Certificates, []byte(s))
		}
		return c
	}
	cases := []struct {
		name      string
		old, next wire.Credential
		want      bool
	}{
		{"same basic identity", basic("carol"), basic("carol"), true},
		{"other basic identity", basic("carol"), basic("carla"), false},
		{"basic identity prefix", basic("carol"), basic("carol2"), false},
		{"same leaf certificate, other chain", x509("carol", "ca1"), x509("carol", "ca2"), true},
		{"other leaf certificate, same chain", x509("carol", "ca"), x509("carla", "ca"), false},
		{"no certificate", x509(), x509(), false},
		{"basic and x509", basic("carol"), x509("carol"), false},
	}
	for _, c := range cases {
		if got := defaultSameClient(&c.old, &c.next); got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
