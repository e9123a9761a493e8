package group

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// GREASE (§13.5) both ways: KeyPackages, leaves and GroupInfos carrying
// GREASE values where the RFC allows them are accepted, Parley's own carry
// them only there, and the rules that still apply to unknown values hold.

func greaseConfig(t testing.TB, grease bool) *Config {
	var seed [32]byte
	copy(seed[:], t.Name())
	if grease {
		seed[31] = 1
	}
	return &Config{Rand: rand.NewChaCha8(seed), Grease: grease}
}

// greaseBundle makes a KeyPackage for name, with Parley's GREASE when
// cfg.Grease is set.
func greaseBundle(t testing.TB, cs suite.CipherSuite, cfg *Config, name string) *KeyPackageBundle {
	t.Helper()
	signer, err := cs.GenerateSignatureKey(cfg.Rand)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPackage(cs, signer, KeyPackageOptions{
		Credential: wire.NewBasicCredential([]byte(name)), Grease: cfg.Grease, Rand: cfg.Rand,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mlsppShaped returns a KeyPackage for name shaped like MLSpp's: GREASE
// values in every capabilities list but versions, a GREASE extension in the
// leaf (listed in the capabilities) and one in KeyPackage.extensions (not
// listed).
func mlsppShaped(t testing.TB, cs suite.CipherSuite, cfg *Config, name string) *KeyPackageBundle {
	t.Helper()
	caps := DefaultCapabilities()
	caps.CipherSuites = append(caps.CipherSuites, 0x2A2A, 0xBABA)
	caps.Extensions = append(caps.Extensions, 0x1A1A)
	caps.Proposals = append(caps.Proposals, 0x4A4A)
	caps.Credentials = append(caps.Credentials, 0x5A5A)
	signer, err := cs.GenerateSignatureKey(cfg.Rand)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPackage(cs, signer, KeyPackageOptions{
		Credential:     wire.NewBasicCredential([]byte(name)),
		Capabilities:   &caps,
		LeafExtensions: wire.Extensions{{Type: 0x1A1A, Data: []byte{}}},
		Extensions:     wire.Extensions{{Type: 0x3A3A, Data: []byte{0xde, 0xad, 0xbe, 0xef}}},
		Rand:           cfg.Rand,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// greaseGroup is a group whose members may have different configs.
type greaseGroup struct {
	t       *testing.T
	members []*State
}

// commit has member i commit with opts, every other member process it (the
// removed ones leave g.members), and the members opts adds join from its Welcome (in joiners' order, each
// with its config).
func (g *greaseGroup) commit(i int, opts CommitOptions, joiners []*KeyPackageBundle, cfgs []*Config) *StagedCommit {
	g.t.Helper()
	opts.WelcomeWithTree = true
	sc, err := g.members[i].Commit(opts)
	if err != nil {
		g.t.Fatalf("member %d commits: %v", i, err)
	}
	for j, m := range g.members {
		if j == i {
			continue
		}
		res, err := m.ProcessBytes(sc.Message)
		if err != nil {
			g.t.Fatalf("member %d processes the commit of %d: %v", j, i, err)
		}
		g.members[j] = res.Commit.State
	}
	g.members[i] = sc.State
	g.members = slices.DeleteFunc(g.members, func(m *State) bool { return m == nil }) // removed
	for k, b := range joiners {
		s, err := JoinWelcome(cfgs[k], sc.Welcome, b, JoinOptions{})
		if err != nil {
			g.t.Fatalf("joining: %v", err)
		}
		g.members = append(g.members, s)
	}
	g.agree()
	return sc
}

// agree checks that every member is in the same epoch and that each one's
// application message reaches the others.
func (g *greaseGroup) agree() {
	g.t.Helper()
	want := g.members[0].EpochAuthenticator()
	for i, m := range g.members {
		if !bytes.Equal(m.EpochAuthenticator(), want) {
			g.t.Fatalf("member %d disagrees on epoch %d", i, m.Epoch())
		}
	}
	for i, m := range g.members {
		msg, err := m.EncryptApplication([]byte("hello"), nil)
		if err != nil {
			g.t.Fatal(err)
		}
		for j, r := range g.members {
			if j == i {
				continue
			}
			if out, err := r.ProcessBytes(msg); err != nil || string(out.ApplicationData) != "hello" {
				g.t.Fatalf("member %d reading member %d: %q, %v", j, i, out.ApplicationData, err)
			}
		}
	}
}

func TestMLSppShapedKeyPackageJoinsAndWorks(t *testing.T) {
	cfg := greaseConfig(t, false)
	kp := mlsppShaped(t, testSuite, cfg, "bob")
	if err := ValidateKeyPackage(kp.KeyPackage, testSuite, cfg.now(), nil); err != nil {
		t.Fatalf("ValidateKeyPackage: %v", err)
	}
	alice, err := Create(cfg, []byte("grease"), nil, greaseBundle(t, testSuite, cfg, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	g := &greaseGroup{t: t, members: []*State{alice}}
	g.commit(0, CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *kp.KeyPackage}}},
		[]*KeyPackageBundle{kp}, []*Config{cfg})
	// Carol, also MLSpp-shaped, is proposed by Bob and added by Alice.
	carol := mlsppShaped(t, testSuite, cfg, "carol")
	prop, _, err := g.members[1].Propose(&wire.Add{KeyPackage: *carol.KeyPackage}, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.members[0].ProcessBytes(prop); err != nil {
		t.Fatalf("Add proposal of an MLSpp-shaped KeyPackage: %v", err)
	}
	g.commit(0, CommitOptions{IncludePending: true}, []*KeyPackageBundle{carol}, []*Config{cfg})
	// The GREASEd members commit with a path and update.
	g.commit(1, CommitOptions{ForcePath: true}, nil, nil)
	g.commit(2, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 0}}}, nil, nil)
	if n := g.members[0].Tree().Members(); n != 2 || len(g.members) != 2 {
		t.Errorf("%d members, want 2", n)
	}
}

// checkLeafGREASE checks that a leaf holds GREASE values only where
// §13.5 allows them, and reports whether it holds any.
func checkLeafGREASE(t *testing.T, l *wire.LeafNode) bool {
	t.Helper()
	c := &l.Capabilities
	if slices.ContainsFunc(c.Versions, wire.IsGREASE) {
		t.Errorf("GREASE version in %v", c.Versions)
	}
	if wire.IsGREASE(l.Credential.Type) {
		t.Errorf("GREASE credential type %d", l.Credential.Type)
	}
	for _, x := range l.Extensions {
		if !x.Type.IsDefault() && !slices.Contains(c.Extensions, x.Type) {
			t.Errorf("leaf extension %d not in capabilities", x.Type)
		}
	}
	return slices.ContainsFunc(c.CipherSuites, wire.IsGREASE) &&
		slices.ContainsFunc(c.Extensions, wire.IsGREASE) &&
		slices.ContainsFunc(c.Proposals, wire.IsGREASE) &&
		slices.ContainsFunc(c.Credentials, wire.IsGREASE) &&
		slices.ContainsFunc(l.Extensions, func(x wire.Extension) bool { return wire.IsGREASE(x.Type) })
}

func hasGREASEExtension(exts wire.Extensions) bool {
	return slices.ContainsFunc(exts, func(x wire.Extension) bool { return wire.IsGREASE(x.Type) })
}

func TestGREASEGoesOnlyWhereAllowed(t *testing.T) {
	for seed := range uint64(32) {
		cfg := &Config{Rand: rand.NewChaCha8([32]byte{byte(seed)}), Grease: true}
		b := greaseBundle(t, testSuite, cfg, "alice")
		kp := b.KeyPackage
		if !checkLeafGREASE(t, &kp.LeafNode) {
			t.Errorf("seed %d: a list of the leaf has no GREASE: %+v", seed, kp.LeafNode.Capabilities)
		}
		if wire.IsGREASE(kp.CipherSuite) || wire.IsGREASE(kp.Version) {
			t.Errorf("seed %d: GREASE suite or version", seed)
		}
		if !hasGREASEExtension(kp.Extensions) {
			t.Errorf("seed %d: no GREASE in KeyPackage.extensions", seed)
		}
		for _, x := range kp.Extensions {
			if !kp.LeafNode.Capabilities.HasExtension(x.Type) {
				t.Errorf("seed %d: KeyPackage extension %d not listed", seed, x.Type)
			}
		}
		if err := ValidateKeyPackage(kp, testSuite, cfg.now(), nil); err != nil {
			t.Fatalf("seed %d: own KeyPackage: %v", seed, err)
		}
		s, err := Create(cfg, []byte("g"), nil, b)
		if err != nil {
			t.Fatal(err)
		}
		gi, err := s.GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
		if err != nil {
			t.Fatal(err)
		}
		if !hasGREASEExtension(gi.Extensions) || hasGREASEExtension(gi.GroupContext.Extensions) {
			t.Errorf("seed %d: GroupInfo extensions %v, context %v", seed, gi.Extensions, gi.GroupContext.Extensions)
		}
	}
	// Off, nothing changes.
	cfg := greaseConfig(t, false)
	kp := greaseBundle(t, testSuite, cfg, "alice").KeyPackage
	if !kp.LeafNode.Capabilities.HasVersion(wire.MLS10) || len(kp.Extensions) != 0 || len(kp.LeafNode.Extensions) != 0 ||
		!slices.Equal(kp.LeafNode.Capabilities.CipherSuites, suite.All) {
		t.Errorf("GREASE without the switch: %+v", kp)
	}
}

func TestGREASEdMembersWorkWithPlainOnes(t *testing.T) {
	on, off := greaseConfig(t, true), greaseConfig(t, false)
	alice, err := Create(on, []byte("grease"), nil, greaseBundle(t, testSuite, on, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	g := &greaseGroup{t: t, members: []*State{alice}}
	bob, carol := greaseBundle(t, testSuite, off, "bob"), greaseBundle(t, testSuite, on, "carol")
	sc := g.commit(0, CommitOptions{
		Proposals: []wire.Proposal{&wire.Add{KeyPackage: *bob.KeyPackage}, &wire.Add{KeyPackage: *carol.KeyPackage}},
		GroupInfo: &GroupInfoOptions{WithExternalPub: true},
	}, []*KeyPackageBundle{bob, carol}, []*Config{off, on})
	if !hasGREASEExtension(sc.GroupInfo.Extensions) {
		t.Errorf("GroupInfo without GREASE: %v", sc.GroupInfo.Extensions)
	}
	// Bob, plain, commits with a path; the GREASEd commit in turn.
	g.commit(1, CommitOptions{ForcePath: true}, nil, nil)
	g.commit(2, CommitOptions{ForcePath: true}, nil, nil)
	if !checkLeafGREASE(t, g.members[1].Tree().Leaf(2)) {
		t.Errorf("Carol's commit leaf lost its GREASE")
	}
	// Dave joins by external commit from a GREASEd GroupInfo, GREASEd himself.
	gi, err := g.members[0].GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	// admit has every member process an external join, then adds the
	// joiner.
	admit := func(ext *StagedCommit) {
		t.Helper()
		for i, m := range g.members {
			res, err := m.ProcessBytes(ext.Message)
			if err != nil {
				t.Fatalf("member %d: %v", i, err)
			}
			g.members[i] = res.Commit.State
		}
		g.members = append(g.members, ext.State)
		g.agree()
	}
	dave := greaseBundle(t, testSuite, on, "dave")
	ext, err := JoinExternal(off, decodeGroupInfo(t, codec.MustMarshal(gi)), dave.Signer, ExternalJoinOptions{Credential: dave.KeyPackage.LeafNode.Credential})
	if err != nil {
		t.Fatalf("plain joiner, GREASEd GroupInfo: %v", err)
	}
	admit(ext)
	// Erin, GREASEd, joins from plain Bob's GroupInfo.
	gi, err = g.members[1].GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
	if err != nil {
		t.Fatal(err)
	}
	if hasGREASEExtension(gi.Extensions) {
		t.Errorf("GREASE in the GroupInfo of a member without the switch")
	}
	erin := greaseBundle(t, testSuite, off, "erin")
	ext, err = JoinExternal(on, decodeGroupInfo(t, codec.MustMarshal(gi)), erin.Signer, ExternalJoinOptions{Credential: erin.KeyPackage.LeafNode.Credential})
	if err != nil {
		t.Fatal(err)
	}
	if !checkLeafGREASE(t, ext.State.Tree().Leaf(ext.State.OwnLeaf())) {
		t.Errorf("external joiner's leaf without GREASE")
	}
	admit(ext)
	g.commit(1, CommitOptions{Proposals: []wire.Proposal{&wire.Remove{Removed: 2}}}, nil, nil)
	for _, m := range g.members {
		if hasGREASEExtension(m.Extensions()) {
			t.Errorf("GREASE in the group context: %v", m.Extensions())
		}
	}
}

// Each check that unknown values must pass: the KeyPackage, proposed in an
// Add, is accepted, and the group adds it.
func TestUnknownValuesAreIgnored(t *testing.T) {
	cases := []struct {
		name string
		edit func(o *KeyPackageOptions, c *wire.Capabilities)
	}{
		{"GREASE extension in KeyPackage.extensions, not in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			o.Extensions = wire.Extensions{{Type: 0x3A3A, Data: []byte{1, 2, 3}}}
		}},
		{"unknown extension in KeyPackage.extensions, not in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			o.Extensions = wire.Extensions{{Type: 0xff10}}
		}},
		{"GREASE cipher suites in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			c.CipherSuites = append([]suite.CipherSuite{0x0A0A}, append(c.CipherSuites, 0xEAEA)...)
		}},
		{"GREASE extensions in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			c.Extensions = append(c.Extensions, 0x6A6A, 0x7A7A)
		}},
		{"GREASE proposals in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			c.Proposals = append(c.Proposals, 0x8A8A)
		}},
		{"GREASE credentials in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			c.Credentials = append([]wire.CredentialType{0x9A9A}, c.Credentials...)
		}},
		{"unknown version in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			c.Versions = append(c.Versions, 0x0200)
		}},
		{"GREASE extension in the leaf, listed in capabilities", func(o *KeyPackageOptions, c *wire.Capabilities) {
			c.Extensions = append(c.Extensions, 0xAAAA)
			o.LeafExtensions = wire.Extensions{{Type: 0xAAAA, Data: []byte{9}}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			caps := DefaultCapabilities()
			signer, err := testSuite.GenerateSignatureKey(f.cfg.Rand)
			if err != nil {
				t.Fatal(err)
			}
			opts := KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("erin")), Rand: f.cfg.Rand}
			c.edit(&opts, &caps)
			opts.Capabilities = &caps
			b, err := NewKeyPackage(testSuite, signer, opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.members[1].ProcessBytes(f.rawProposal(2, &wire.Add{KeyPackage: *b.KeyPackage})); err != nil {
				t.Fatalf("Add proposal rejected: %v", err)
			}
			sc, err := f.members[0].Commit(CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *b.KeyPackage}}, WelcomeWithTree: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.members[3].ProcessBytes(sc.Message); err != nil {
				t.Fatalf("commit rejected: %v", err)
			}
			if _, err := JoinWelcome(f.cfg, sc.Welcome, b, JoinOptions{}); err != nil {
				t.Fatalf("Welcome rejected: %v", err)
			}
		})
	}
}

// The rules that still apply when unknown or GREASE values are involved.
func TestGREASEDoesNotLiftOtherRules(t *testing.T) {
	// Every member advertises 0x3A3A, as it would as GREASE.
	greased := DefaultCapabilities()
	greased.Extensions = append(greased.Extensions, 0x3A3A)
	requireGREASE := wire.Extensions{{Type: wire.ExtensionRequiredCapabilities,
		Data: codec.MustMarshal(&wire.RequiredCapabilities{Extensions: []wire.ExtensionType{0x3A3A}})}}
	cases := []struct {
		name string
		opts fixtureOptions
		msg  func(f *fixture) []byte
		want []error
	}{
		{"GREASE extension in a KeyPackage's leaf, not in capabilities", fixtureOptions{}, func(f *fixture) []byte {
			signer, _ := testSuite.GenerateSignatureKey(f.cfg.Rand)
			b, err := NewKeyPackage(testSuite, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("erin")),
				LeafExtensions: wire.Extensions{{Type: 0x3A3A}}, Rand: f.cfg.Rand})
			if err != nil {
				t.Fatal(err)
			}
			return f.rawProposal(2, &wire.Add{KeyPackage: *b.KeyPackage})
		}, []error{ErrInvalidKeyPackage, ratchettree.ErrLeafExtension}},
		{"GREASE extension in an update leaf, not in capabilities", fixtureOptions{}, func(f *fixture) []byte {
			return f.rawProposal(2, &wire.Update{LeafNode: *f.updateLeaf(2, func(l *wire.LeafNode) { l.Extensions = wire.Extensions{{Type: 0x3A3A}} })})
		}, []error{ratchettree.ErrLeafExtension}},
		{"last_resort in KeyPackage.extensions, not in capabilities", fixtureOptions{}, func(f *fixture) []byte {
			caps := DefaultCapabilities()
			caps.Extensions = nil
			signer, _ := testSuite.GenerateSignatureKey(f.cfg.Rand)
			b, err := NewKeyPackage(testSuite, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte("erin")),
				Capabilities: &caps, LastResort: true, Rand: f.cfg.Rand})
			if err != nil {
				t.Fatal(err)
			}
			return f.rawProposal(2, &wire.Add{KeyPackage: *b.KeyPackage})
		}, []error{ErrInvalidKeyPackage}},
		{"group context extension of a GREASE type every member advertises", fixtureOptions{capabilities: &greased}, func(f *fixture) []byte {
			gce := &wire.GroupContextExtensions{Extensions: wire.Extensions{{Type: 0x3A3A}}}
			return f.commit(0, CommitOptions{tamper: appendProposals(gce)})
		}, []error{ErrUnsupportedByMembers}},
		{"required capability of a GREASE type every member advertises", fixtureOptions{capabilities: &greased}, func(f *fixture) []byte {
			gce := &wire.GroupContextExtensions{Extensions: requireGREASE}
			return f.commit(0, CommitOptions{tamper: appendProposals(gce)})
		}, []error{ErrUnsupportedByMembers}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, c.opts)
			f.expectRejected(1, c.msg(f), c.want...)
		})
	}
}

// A joiner checks the group's extensions against what it supports, not
// against the GREASE values its KeyPackage advertises.
func TestWelcomeIntoGroupNeedingAGREASEValueIsRefused(t *testing.T) {
	greased := DefaultCapabilities()
	greased.Extensions = append(greased.Extensions, 0x3A3A)
	requireGREASE := wire.Extensions{{Type: wire.ExtensionRequiredCapabilities,
		Data: codec.MustMarshal(&wire.RequiredCapabilities{Extensions: []wire.ExtensionType{0x3A3A}})}}
	for _, exts := range []wire.Extensions{{{Type: 0x3A3A}}, requireGREASE} {
		cfg := greaseConfig(t, false)
		alice, err := Create(cfg, []byte("g"), exts, newTestBundle(t, cfg, "alice", &greased))
		if err != nil {
			t.Fatal(err)
		}
		bob := newTestBundle(t, cfg, "bob", &greased)
		sc, err := alice.Commit(CommitOptions{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *bob.KeyPackage}}, WelcomeWithTree: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := JoinWelcome(cfg, sc.Welcome, bob, JoinOptions{}); !errors.Is(err, ErrInvalidWelcome) {
			t.Errorf("extensions %v: joined, error %v", exts, err)
		}
	}
}

func TestOwnCapabilitiesLeaveGREASEOut(t *testing.T) {
	c := wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10},
		CipherSuites: []suite.CipherSuite{0x0A0A, 1, 0xFAFA},
		Extensions:   []wire.ExtensionType{0x1A1A, ExtensionLastResort, 0xEAEA},
		Proposals:    []wire.ProposalType{0x4A4A},
		Credentials:  []wire.CredentialType{1, 0x5A5A, 2},
	}
	got := ownCapabilities(&c)
	want := wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10},
		CipherSuites: []suite.CipherSuite{1, 0xFAFA},
		Extensions:   []wire.ExtensionType{ExtensionLastResort},
		Proposals:    []wire.ProposalType{},
		Credentials:  []wire.CredentialType{1, 2},
	}
	if !bytes.Equal(codec.MustMarshal(got), codec.MustMarshal(&want)) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if c.CipherSuites[0] != 0x0A0A {
		t.Errorf("ownCapabilities changed its input")
	}
}
