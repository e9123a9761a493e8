package group

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// The fuzz targets feed a member of a valid four-member group mutated
// commits, proposals and PrivateMessages. No input may panic, and an input
// that is rejected must leave the member's state byte-for-byte unchanged.
// There is one group per suite of fuzzSuites (a classical and a
// post-quantum one, whose keys and kem_outputs are 1216 and 1120 bytes);
// the fuzzer's first argument picks the group.

var fuzzSuites = []suite.CipherSuite{testSuite, suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519}

func fuzzProcess(f *testing.F, seeds func(fx *fixture) [][]byte) {
	var fxs []*fixture
	var bases [][]byte
	for i, cs := range fuzzSuites {
		var fx *fixture
		if cs == testSuite {
			fx = newFixture(f, fixtureOptions{}) // the group these targets have always used
		} else {
			fx = newSuiteFixture(f, cs)
		}
		for _, s := range seeds(fx) {
			f.Add(uint8(i), s)
		}
		fxs = append(fxs, fx)
		bases = append(bases, snapshot(f, fx.members[1]))
	}
	f.Fuzz(func(t *testing.T, group uint8, data []byte) {
		i := int(group) % len(fxs)
		st, err := Restore(fxs[i].cfg, bases[i])
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.ProcessBytes(data)
		if err != nil {
			if after := snapshot(t, st); !bytes.Equal(after, bases[i]) {
				t.Fatalf("rejected input (%v) changed the state", err)
			}
		}
	})
}

// newSuiteFixture is newFixture's four-member group in epoch 1, in suite cs.
func newSuiteFixture(t testing.TB, cs suite.CipherSuite) *fixture {
	t.Helper()
	var seed [32]byte
	copy(seed[:], t.Name()+cs.String())
	cfg := &Config{Rand: rand.NewChaCha8(seed)}
	a, err := Create(cfg, []byte("fixture"), nil, suiteBundle(t, cs, cfg, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	var adds []wire.Proposal
	var bundles []*KeyPackageBundle
	for _, name := range []string{"bob", "carol", "dave"} {
		b := suiteBundle(t, cs, cfg, name)
		bundles = append(bundles, b)
		adds = append(adds, &wire.Add{KeyPackage: *b.KeyPackage})
	}
	sc, err := a.Commit(CommitOptions{Proposals: adds, WelcomeWithTree: true})
	if err != nil {
		t.Fatal(err)
	}
	fx := &fixture{t: t, cfg: cfg, members: []*State{sc.State}}
	for _, b := range bundles {
		s, err := JoinWelcome(cfg, sc.Welcome, b, JoinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fx.members = append(fx.members, s)
	}
	return fx
}

// suiteBundle is newTestBundle in suite cs.
func suiteBundle(t testing.TB, cs suite.CipherSuite, cfg *Config, name string) *KeyPackageBundle {
	t.Helper()
	signer, err := cs.GenerateSignatureKey(cfg.Rand)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPackage(cs, signer, KeyPackageOptions{Credential: wire.NewBasicCredential([]byte(name)), Rand: cfg.Rand})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzProcessCommit(f *testing.F) {
	fuzzProcess(f, func(fx *fixture) [][]byte {
		var out [][]byte
		for _, opts := range []CommitOptions{
			{},
			{Encrypt: true},
			{Proposals: []wire.Proposal{&wire.Remove{Removed: 3}}},
			{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *suiteBundle(f, fx.members[0].Suite(), fx.cfg, "erin").KeyPackage}}},
			{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *suiteBundle(f, fx.members[0].Suite(), fx.cfg, "fay").KeyPackage}}, Encrypt: true},
			{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *mlsppShaped(f, fx.members[0].Suite(), fx.cfg, "gus").KeyPackage}}},
			{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *greaseBundle(f, fx.members[0].Suite(), &Config{Rand: fx.cfg.Rand, Grease: true}, "hal").KeyPackage}}},
		} {
			out = append(out, fx.commit(0, opts))
		}
		// A SelfRemove by reference, from a member and from a joiner.
		msg, ref := fx.selfRemove(2)
		out = append(out, fx.commit(0, CommitOptions{ByReference: [][]byte{ref}}))
		gi, err := fx.members[0].GroupInfo(GroupInfoOptions{WithTree: true, WithExternalPub: true})
		if err != nil {
			f.Fatal(err)
		}
		signer, err := gi.GroupContext.CipherSuite.GenerateSignatureKey(fx.cfg.Rand)
		if err != nil {
			f.Fatal(err)
		}
		sc, err := JoinExternal(fx.cfg, gi, signer, ExternalJoinOptions{Credential: wire.NewBasicCredential([]byte("ivy")), SelfRemoves: [][]byte{msg}})
		if err != nil {
			f.Fatal(err)
		}
		return append(out, sc.Message)
	})
}

func FuzzProcessProposal(f *testing.F) {
	fuzzProcess(f, func(fx *fixture) [][]byte {
		var out [][]byte
		for _, enc := range []bool{false, true} {
			for _, p := range []wire.Proposal{
				&wire.Update{},
				&wire.Remove{Removed: 3},
				&wire.Add{KeyPackage: *suiteBundle(f, fx.members[0].Suite(), fx.cfg, "erin").KeyPackage},
				&wire.Add{KeyPackage: *mlsppShaped(f, fx.members[0].Suite(), fx.cfg, "gus").KeyPackage},
				&wire.GroupContextExtensions{},
			} {
				msg, _, err := fx.members[2].Propose(p, enc, []byte("ad"))
				if err != nil {
					f.Fatal(err)
				}
				out = append(out, msg)
			}
		}
		msg, _, err := fx.members[2].ProposeSelfRemove([]byte("ad"))
		if err != nil {
			f.Fatal(err)
		}
		// And one in a PrivateMessage, which receivers refuse.
		return append(out, msg, fx.rawSelfRemove(3, true, nil))
	})
}

func FuzzProcessPrivateMessage(f *testing.F) {
	fuzzProcess(f, func(fx *fixture) [][]byte {
		var out [][]byte
		for i, text := range []string{"", "hello", string(make([]byte, 300))} {
			msg, err := fx.members[i%4].EncryptApplication([]byte(text), []byte("ad"))
			if err != nil {
				f.Fatal(err)
			}
			out = append(out, msg)
		}
		return out
	})
}
