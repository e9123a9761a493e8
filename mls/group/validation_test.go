package group

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// Each validation rule of §7.3, §10.1, §12.1, §12.2 and §12.4.2 has a test
// here: a message that breaks exactly that rule, which the receiver must
// reject with that rule's error while its state stays byte-for-byte the
// same (the snapshot before equals the snapshot after).

const testSuite = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

type fixture struct {
	t       testing.TB
	cfg     *Config
	members []*State // A, B, C, D at leaves 0..3
}

type fixtureOptions struct {
	capabilities *wire.Capabilities
	extensions   wire.Extensions
	validate     ratchettree.CredentialValidator
}

func newTestBundle(t testing.TB, cfg *Config, name string, caps *wire.Capabilities) *KeyPackageBundle {
	t.Helper()
	signer, err := testSuite.GenerateSignatureKey(cfg.Rand)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPackage(testSuite, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(name)), Capabilities: caps, Rand: cfg.Rand})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newFixture makes a four-member group in epoch 1.
func newFixture(t testing.TB, opts fixtureOptions) *fixture {
	t.Helper()
	var seed [32]byte
	copy(seed[:], t.Name())
	cfg := &Config{Rand: rand.NewChaCha8(seed), ValidateCredential: opts.validate}
	a, err := Create(cfg, []byte("fixture"), opts.extensions, newTestBundle(t, cfg, "alice", opts.capabilities))
	if err != nil {
		t.Fatal(err)
	}
	var adds []wire.Proposal
	var bundles []*KeyPackageBundle
	for _, name := range []string{"bob", "carol", "dave"} {
		b := newTestBundle(t, cfg, name, opts.capabilities)
		bundles = append(bundles, b)
		adds = append(adds, &wire.Add{KeyPackage: *b.KeyPackage})
	}
	sc, err := a.Commit(CommitOptions{Proposals: adds, WelcomeWithTree: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, cfg: cfg, members: []*State{sc.State}}
	for _, b := range bundles {
		s, err := JoinWelcome(cfg, sc.Welcome, b, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.members = append(f.members, s)
	}
	return f
}

func snapshot(t testing.TB, s *State) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// expectRejected processes msg at member r and checks the error and that
// r's state did not change.
func (f *fixture) expectRejected(r int, msg []byte, want ...error) {
	f.t.Helper()
	st := f.members[r]
	before := snapshot(f.t, st)
	_, err := st.ProcessBytes(msg)
	if err == nil {
		f.t.Fatalf("message accepted, want %v", want)
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			f.t.Errorf("error %q does not match %q", err, w)
		}
	}
	if after := snapshot(f.t, st); !bytes.Equal(before, after) {
		f.t.Errorf("state changed by a rejected message")
	}
}

// commit has member i commit with opts (tamper included).
func (f *fixture) commit(i int, opts CommitOptions) []byte {
	f.t.Helper()
	sc, err := f.members[i].Commit(opts)
	if err != nil {
		f.t.Fatalf("creating commit: %v", err)
	}
	return sc.Message
}

// rawProposal frames and signs a proposal from member i without checking
// it.
func (f *fixture) rawProposal(i int, p wire.Proposal) []byte {
	f.t.Helper()
	s := f.members[i]
	content := s.newContent(wire.ContentProposal, nil)
	content.Proposal = p
	sig, err := framing.Sign(s.cs, s.signer, wire.WireFormatPublicMessage, &content, s.ctxEnc, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := s.frame(&content, &wire.FramedContentAuthData{Signature: sig}, false)
	if err != nil {
		f.t.Fatal(err)
	}
	return codec.MustMarshal(m)
}

// updateLeaf returns a valid update leaf for member i, changed by edit and
// signed after it (unless edit sets a signature).
func (f *fixture) updateLeaf(i int, edit func(*wire.LeafNode)) *wire.LeafNode {
	f.t.Helper()
	s := f.members[i]
	leaf := *s.tree.Leaf(s.own)
	key, err := s.cs.GenerateHPKEKey(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	leaf.EncryptionKey = key.PublicKey()
	leaf.Source = wire.LeafNodeSourceUpdate
	leaf.Lifetime, leaf.ParentHash, leaf.Signature = wire.Lifetime{}, nil, nil
	if edit != nil {
		edit(&leaf)
	}
	if leaf.Signature == nil {
		if err := leaf.Sign(s.cs, s.signer, s.ctx.GroupID, uint32(s.own)); err != nil {
			f.t.Fatal(err)
		}
	}
	return &leaf
}

func (f *fixture) nonce() []byte { return bytes.Repeat([]byte{7}, testSuite.Nh()) }

// republish re-frames a PublicMessage commit of member i after edit, with
// a fresh membership tag (the signature is not redone).
func (f *fixture) republish(i int, msg []byte, edit func(*wire.PublicMessage)) []byte {
	f.t.Helper()
	var m wire.MLSMessage
	if err := codec.Unmarshal(msg, &m); err != nil {
		f.t.Fatal(err)
	}
	edit(m.PublicMessage)
	s := f.members[i]
	pm, err := framing.NewPublicMessage(s.cs, &m.PublicMessage.Content, &m.PublicMessage.Auth, s.secrets.MembershipKey, s.ctxEnc)
	if err != nil {
		f.t.Fatal(err)
	}
	return codec.MustMarshal(wire.NewMLSMessage(pm))
}

func appendProposals(ps ...wire.Proposal) func(*wire.Commit) {
	return func(c *wire.Commit) {
		for _, p := range ps {
			c.Proposals = append(c.Proposals, wire.ProposalOrRef{Proposal: p})
		}
	}
}

// Rules of §12.2: proposal list validation.
func TestProposalListRules(t *testing.T) {
	cases := []struct {
		name string
		msg  func(f *fixture) []byte
		want []error
	}{
		{"committer's own update", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: appendProposals(&wire.Update{LeafNode: *f.updateLeaf(0, nil)})})
		}, []error{ErrCommitterUpdate}},
		{"committer removes itself", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: appendProposals(&wire.Remove{Removed: 0})})
		}, []error{ErrCommitterRemoved}},
		{"two removes of one leaf", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 2}}, tamper: appendProposals(&wire.Remove{Removed: 2})})
		}, []error{ErrDuplicateLeafChange}},
		{"update and remove of one leaf", func(f *fixture) []byte {
			msg := f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, nil)})
			var ref []byte
			for _, i := range []int{0, 1} {
				res, err := f.members[i].ProcessBytes(msg)
				if err != nil {
					t.Fatal(err)
				}
				ref = res.ProposalRef
			}
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 2}}, tamper: func(c *wire.Commit) {
				c.Proposals = append(c.Proposals, wire.ProposalOrRef{Reference: ref})
			}})
		}, []error{ErrDuplicateLeafChange}},
		{"two adds of one client", func(f *fixture) []byte {
			kp := newTestBundle(t, f.cfg, "erin", nil).KeyPackage
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *kp}}, tamper: appendProposals(&wire.Add{KeyPackage: *kp})})
		}, []error{ErrInvalidProposalList, ratchettree.ErrDuplicateKey}},
		{"add of a client already in the group", func(f *fixture) []byte {
			kp, err := NewKeyPackage(testSuite, f.members[2].signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("carol"))})
			if err != nil {
				t.Fatal(err)
			}
			return f.commit(0, CommitOptions{tamper: appendProposals(&wire.Add{KeyPackage: *kp.KeyPackage})})
		}, []error{ErrInvalidProposalList, ratchettree.ErrDuplicateKey}},
		{"one PSK twice", func(f *fixture) []byte {
			f.cfg.PSKs = staticPSKs{"k": []byte("secret")}
			psk := &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: []byte("k"), Nonce: f.nonce()}}
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{psk}, tamper: appendProposals(psk)})
		}, []error{ErrDuplicatePSK}},
		{"two group_context_extensions", func(f *fixture) []byte {
			gce := &wire.GroupContextExtensions{}
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{gce}, tamper: appendProposals(gce)})
		}, []error{ErrMultipleGCE}},
		{"reinit with another proposal", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 3}},
				tamper: appendProposals(&wire.ReInit{GroupID: []byte("new"), Version: wire.MLS10, CipherSuite: testSuite})})
		}, []error{ErrReInitNotAlone}},
		{"external_init in a member's commit", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: appendProposals(&wire.ExternalInit{KEMOutput: make([]byte, 32)})})
		}, []error{ErrExternalInitInCommit}},
		{"extension not supported by members", func(f *fixture) []byte {
			gce := &wire.GroupContextExtensions{Extensions: wire.Extensions{{Type: 0xff33, Data: []byte{1}}}}
			return f.commit(0, CommitOptions{tamper: appendProposals(gce)})
		}, []error{ErrUnsupportedByMembers}},
		{"proposal by unknown reference", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
				c.Proposals = append(c.Proposals, wire.ProposalOrRef{Reference: make([]byte, 32)})
			}})
		}, []error{ErrUnknownProposal}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.expectRejected(1, c.msg(f), c.want...)
		})
	}
}

type staticPSKs map[string][]byte

func (p staticPSKs) ExternalPSK(id []byte) ([]byte, bool)        { v, ok := p[string(id)]; return v, ok }
func (p staticPSKs) ResumptionPSK([]byte, uint64) ([]byte, bool) { return nil, false }

// Rules of §12.1 about single proposals, inline in a commit.
func TestProposalRules(t *testing.T) {
	cases := []struct {
		name string
		p    func(f *fixture) wire.Proposal
		want []error
	}{
		{"remove of a blank leaf", func(f *fixture) wire.Proposal { return &wire.Remove{Removed: 9} }, []error{ErrRemoveUnknownMember}},
		{"psk_nonce of the wrong length", func(f *fixture) wire.Proposal {
			return &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: []byte("k"), Nonce: []byte{1}}}
		}, []error{ErrPSKRule}},
		{"resumption PSK with usage reinit", func(f *fixture) wire.Proposal {
			return &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKResumption, Usage: wire.ResumptionReInit, PSKGroupID: []byte("fixture"), PSKEpoch: 1, Nonce: f.nonce()}}
		}, []error{ErrPSKRule}},
		{"resumption PSK with usage branch", func(f *fixture) wire.Proposal {
			return &wire.PreSharedKey{PSK: wire.PreSharedKeyID{Type: wire.PSKResumption, Usage: wire.ResumptionBranch, PSKGroupID: []byte("fixture"), PSKEpoch: 1, Nonce: f.nonce()}}
		}, []error{ErrPSKRule}},
		{"reinit to an older version", func(f *fixture) wire.Proposal {
			return &wire.ReInit{GroupID: []byte("x"), Version: 0, CipherSuite: testSuite}
		}, []error{ErrInvalidProposal}},
		{"add with an invalid key package", func(f *fixture) wire.Proposal {
			kp := *newTestBundle(t, f.cfg, "erin", nil).KeyPackage
			kp.Signature = append([]byte(nil), kp.Signature...)
			kp.Signature[0] ^= 1
			return &wire.Add{KeyPackage: kp}
		}, []error{ErrInvalidKeyPackage}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.expectRejected(1, f.commit(0, CommitOptions{tamper: appendProposals(c.p(f))}), c.want...)
		})
	}
}

// Rules of §12.4.2: processing a commit.
func TestCommitRules(t *testing.T) {
	cases := []struct {
		name string
		msg  func(f *fixture) []byte
		want []error
	}{
		{"remove without a path", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 3}}, tamper: func(c *wire.Commit) { c.Path = nil }})
		}, []error{ErrPathRequired}},
		{"empty commit without a path", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) { c.Path = nil }})
		}, []error{ErrPathRequired}},
		{"wrong epoch", func(f *fixture) []byte {
			return f.republish(0, f.commit(0, CommitOptions{}), func(pm *wire.PublicMessage) { pm.Content.Epoch++ })
		}, []error{ErrWrongEpoch}},
		{"wrong group", func(f *fixture) []byte {
			return f.republish(0, f.commit(0, CommitOptions{}), func(pm *wire.PublicMessage) { pm.Content.GroupID = []byte("other") })
		}, []error{ErrWrongGroup}},
		{"bad membership tag", func(f *fixture) []byte {
			var m wire.MLSMessage
			if err := codec.Unmarshal(f.commit(0, CommitOptions{}), &m); err != nil {
				t.Fatal(err)
			}
			m.PublicMessage.MembershipTag[0] ^= 1
			return codec.MustMarshal(&m)
		}, []error{framing.ErrBadMembershipTag}},
		{"bad signature", func(f *fixture) []byte {
			return f.republish(0, f.commit(0, CommitOptions{}), func(pm *wire.PublicMessage) { pm.Content.AuthenticatedData = []byte("forged") })
		}, []error{ErrBadSignature}},
		{"unknown sender", func(f *fixture) []byte {
			return f.republish(0, f.commit(0, CommitOptions{}), func(pm *wire.PublicMessage) { pm.Content.Sender.Index = 9 })
		}, []error{ErrUnknownSender}},
		{"path leaf with source update", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
				c.Path.LeafNode.Source = wire.LeafNodeSourceUpdate
				c.Path.LeafNode.ParentHash = nil
				if err := c.Path.LeafNode.Sign(testSuite, f.members[0].signer, []byte("fixture"), 0); err != nil {
					t.Fatal(err)
				}
			}})
		}, []error{ErrCommitterLeaf, ratchettree.ErrLeafSource}},
		{"committer keeps its encryption key", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
				c.Path.LeafNode.EncryptionKey = f.members[0].tree.Leaf(0).EncryptionKey
				if err := c.Path.LeafNode.Sign(testSuite, f.members[0].signer, []byte("fixture"), 0); err != nil {
					t.Fatal(err)
				}
			}})
		}, []error{ErrCommitterKeyReused}},
		{"path key already in the tree", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
				c.Path.Nodes[0].EncryptionKey = f.members[0].tree.Leaf(2).EncryptionKey
			}})
		}, []error{ErrPathKeyInTree}},
		{"parent hash mismatch", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
				k, _ := testSuite.GenerateHPKEKey(nil)
				c.Path.Nodes[len(c.Path.Nodes)-1].EncryptionKey = k.PublicKey()
			}})
		}, []error{ErrInvalidCommit, ratchettree.ErrParentHash}},
		{"path shorter than the filtered direct path", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) { c.Path.Nodes = c.Path.Nodes[:len(c.Path.Nodes)-1] }})
		}, []error{ErrInvalidCommit, ratchettree.ErrPathLength}},
		{"path secret does not decrypt", func(f *fixture) []byte {
			return f.commit(0, CommitOptions{tamper: func(c *wire.Commit) {
				for i := range c.Path.Nodes {
					for j := range c.Path.Nodes[i].EncryptedPathSecret {
						ct := c.Path.Nodes[i].EncryptedPathSecret[j].Ciphertext
						ct[len(ct)-1] ^= 1
					}
				}
			}})
		}, []error{ErrInvalidCommit, ratchettree.ErrPathDecryption}},
		{"bad confirmation tag", func(f *fixture) []byte {
			return f.republish(0, f.commit(0, CommitOptions{}), func(pm *wire.PublicMessage) { pm.Auth.ConfirmationTag[0] ^= 1 })
		}, []error{ErrBadConfirmationTag}},
		{"own message", func(f *fixture) []byte { return f.commit(1, CommitOptions{}) }, []error{ErrOwnMessage}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			f.expectRejected(1, c.msg(f), c.want...)
		})
	}
}

// Rules of §7.3 (LeafNode validation), through Update proposals from
// member 2 received by member 1, and through Adds.
func TestLeafNodeRules(t *testing.T) {
	basicOnly := &wire.Capabilities{Versions: []wire.ProtocolVersion{wire.MLS10}, CipherSuites: suite.All, Credentials: []wire.CredentialType{wire.CredentialBasic}}
	withExt := DefaultCapabilities()
	withExt.Extensions = append(withExt.Extensions, 0xff01)
	required := wire.Extensions{{Type: wire.ExtensionRequiredCapabilities, Data: codec.MustMarshal(&wire.RequiredCapabilities{Extensions: []wire.ExtensionType{0xff01}})}}
	cases := []struct {
		name string
		opts fixtureOptions
		msg  func(f *fixture) []byte
		want []error
	}{
		{"leaf signature", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.Signature = make([]byte, 64) })})
		}, []error{ratchettree.ErrLeafSignature}},
		{"update leaf with source key_package", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) {
				l.Source = wire.LeafNodeSourceKeyPackage
				l.Lifetime = wire.Lifetime{NotAfter: 1 << 62}
			})})
		}, []error{ratchettree.ErrLeafSource}},
		{"update keeps the encryption key", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.EncryptionKey = f.members[2].tree.Leaf(2).EncryptionKey })})
		}, []error{ratchettree.ErrLeafKeyUnchanged}},
		{"signature key of another member", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) {
				l.SignatureKey = f.members[3].signer.PublicKey()
				if err := l.Sign(testSuite, f.members[3].signer, []byte("fixture"), 2); err != nil {
					t.Fatal(err)
				}
			})})
		}, []error{ratchettree.ErrDuplicateKey}},
		{"encryption key of another member", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.EncryptionKey = f.members[3].tree.Leaf(3).EncryptionKey })})
		}, []error{ratchettree.ErrDuplicateKey}},
		{"malformed encryption key", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.EncryptionKey = l.EncryptionKey[:31] })})
		}, []error{ratchettree.ErrLeafPublicKey}},
		{"extension not in capabilities", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.Extensions = wire.Extensions{{Type: 0xff02}} })})
		}, []error{ratchettree.ErrLeafExtension}},
		{"credential type not in its own capabilities", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) {
				l.Capabilities.Credentials = []wire.CredentialType{wire.CredentialX509}
			})})
		}, []error{ratchettree.ErrLeafOwnCredential}},
		{"credential type other members do not support", fixtureOptions{capabilities: basicOnly}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) {
				l.Credential = wire.Credential{Type: wire.CredentialX509, Certificates: [][]byte{{1, 2, 3}}}
				l.Capabilities.Credentials = []wire.CredentialType{wire.CredentialBasic, wire.CredentialX509}
			})})
		}, []error{ratchettree.ErrLeafCredentialSupport}},
		{"required capability missing", fixtureOptions{capabilities: &withExt, extensions: required}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.Capabilities.Extensions = nil })})
		}, []error{ratchettree.ErrLeafRequired}},
		{"credential rejected by the application", fixtureOptions{validate: rejectMallory}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.Credential = wire.NewBasicCredential([]byte("mallory")) })})
		}, []error{ratchettree.ErrLeafCredential}},
		{"key package outside its lifetime", fixtureOptions{}, func(f *fixture) []byte {
			signer, _ := testSuite.GenerateSignatureKey(nil)
			kp, err := NewKeyPackage(testSuite, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("erin")),
				Lifetime: &wire.Lifetime{NotBefore: 1, NotAfter: uint64(time.Now().Add(-time.Hour).Unix())}})
			if err != nil {
				t.Fatal(err)
			}
			return f.rawProposal(2, &wire.Add{KeyPackage: *kp.KeyPackage})
		}, []error{ErrInvalidKeyPackage, ratchettree.ErrLeafLifetime}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.opts)
			f.expectRejected(1, c.msg(f), c.want...)
		})
	}
}

func rejectMallory(cred *wire.Credential, _ []byte) error {
	if string(cred.Identity) == "mallory" {
		return errors.New("mallory is not allowed")
	}
	return nil
}

// Rules of §10.1 (KeyPackage validation), through Add proposals.
func TestKeyPackageRules(t *testing.T) {
	cases := []struct {
		name string
		edit func(f *fixture, b *KeyPackageBundle) *wire.KeyPackage
	}{
		{"init key equals encryption key", func(f *fixture, b *KeyPackageBundle) *wire.KeyPackage {
			kp := *b.KeyPackage
			kp.InitKey = kp.LeafNode.EncryptionKey
			if err := kp.Sign(b.Signer); err != nil {
				t.Fatal(err)
			}
			return &kp
		}},
		{"other cipher suite", func(f *fixture, b *KeyPackageBundle) *wire.KeyPackage {
			kp := *b.KeyPackage
			// The suite check comes first; the signature is left as it is.
			kp.CipherSuite = suite.MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519
			return &kp
		}},
		{"other version", func(f *fixture, b *KeyPackageBundle) *wire.KeyPackage {
			kp := *b.KeyPackage
			kp.Version = 2
			if err := kp.Sign(b.Signer); err != nil {
				t.Fatal(err)
			}
			return &kp
		}},
		{"bad signature", func(f *fixture, b *KeyPackageBundle) *wire.KeyPackage {
			kp := *b.KeyPackage
			kp.Signature = make([]byte, 64)
			return &kp
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			kp := c.edit(f, newTestBundle(t, f.cfg, "erin", nil))
			f.expectRejected(1, f.rawProposal(2, &wire.Add{KeyPackage: *kp}), ErrInvalidKeyPackage)
		})
	}
}

// A valid message after rejected ones still works: the rejections really
// left the state usable.
func TestStateStillWorksAfterRejections(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	bad := f.commit(0, CommitOptions{tamper: appendProposals(&wire.Remove{Removed: 0})})
	for range 3 {
		if _, err := f.members[1].ProcessBytes(bad); err == nil {
			t.Fatal("bad commit accepted")
		}
	}
	good := f.commit(2, CommitOptions{Encrypt: true})
	res, err := f.members[1].ProcessBytes(good)
	if err != nil {
		t.Fatalf("valid commit after rejections: %v", err)
	}
	if res.Commit.State.Epoch() != 2 {
		t.Errorf("epoch %d, want 2", res.Commit.State.Epoch())
	}
	app, err := f.members[3].EncryptApplication([]byte("still here"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := f.members[1].ProcessBytes(app); err != nil || string(out.ApplicationData) != "still here" {
		t.Errorf("application message: %q, %v", out.ApplicationData, err)
	}
}
