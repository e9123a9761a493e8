package group

import (
	"bytes"
	"testing"

	"github.com/parley-p2p/parley/mls/wire"
)

// The fuzz targets feed a member of a valid four-member group mutated
// commits, proposals and PrivateMessages. No input may panic, and an input
// that is rejected must leave the member's state byte-for-byte unchanged.

func fuzzProcess(f *testing.F, seeds func(fx *fixture) [][]byte) {
	fx := newFixture(f, fixtureOptions{})
	for _, s := range seeds(fx) {
		f.Add(s)
	}
	base := snapshot(f, fx.members[1])
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Restore(fx.cfg, base)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.ProcessBytes(data)
		if err != nil {
			if after := snapshot(t, st); !bytes.Equal(after, base) {
				t.Fatalf("rejected input (%v) changed the state", err)
			}
		}
	})
}

func FuzzProcessCommit(f *testing.F) {
	fuzzProcess(f, func(fx *fixture) [][]byte {
		var out [][]byte
		for _, opts := range []CommitOptions{
			{},
			{Encrypt: true},
			{Proposals: []wire.Proposal{&wire.Remove{Removed: 3}}},
			{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *newTestBundle(f, fx.cfg, "erin", nil).KeyPackage}}},
			{Proposals: []wire.Proposal{&wire.Add{KeyPackage: *newTestBundle(f, fx.cfg, "fay", nil).KeyPackage}}, Encrypt: true},
		} {
			out = append(out, fx.commit(0, opts))
		}
		return out
	})
}

func FuzzProcessProposal(f *testing.F) {
	fuzzProcess(f, func(fx *fixture) [][]byte {
		var out [][]byte
		for _, enc := range []bool{false, true} {
			for _, p := range []wire.Proposal{
				&wire.Update{},
				&wire.Remove{Removed: 3},
				&wire.Add{KeyPackage: *newTestBundle(f, fx.cfg, "erin", nil).KeyPackage},
				&wire.GroupContextExtensions{},
			} {
				msg, _, err := fx.members[2].Propose(p, enc, []byte("ad"))
				if err != nil {
					f.Fatal(err)
				}
				out = append(out, msg)
			}
		}
		return out
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
