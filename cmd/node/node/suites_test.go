package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// TestGroupsKeepTheirSuite: a group made in the post-quantum suite and one
// made in suite 1 each take in a contact (invited with a KeyPackage of
// the group's suite) and a stranger (with an invite code, which carries
// the suite), carry messages both ways, and show their suite in the
// groups and status results of every member.
func TestGroupsKeepTheirSuite(t *testing.T) {
	ctx := context.Background()
	alice, bob, dave := testNode(t, "alice"), testNode(t, "bob"), testNode(t, "dave")
	befriend(t, alice, bob)
	for _, c := range []struct {
		group string
		opts  []api.GroupOption
		want  suite.CipherSuite
	}{
		{"default", nil, DefaultSuite},
		{"quantum", []api.GroupOption{api.WithSuite("0x0054")}, suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519},
		{"classic", []api.GroupOption{api.WithSuite("1")}, suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519},
		{"named", []api.GroupOption{api.WithSuite("MLS_256_XWING_AES256GCM_SHA512_Ed25519")}, suite.MLS_256_XWING_AES256GCM_SHA512_Ed25519},
	} {
		t.Run(c.group, func(t *testing.T) {
			g, err := alice.CreateGroup(ctx, c.group, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if g.Suite != uint16(c.want) || g.SuiteName != c.want.String() {
				t.Fatalf("created group's suite = 0x%04x %q, want 0x%04x %q", g.Suite, g.SuiteName, uint16(c.want), c.want)
			}
			if err := alice.Invite(ctx, c.group, "bob"); err != nil {
				t.Fatal(err)
			}
			code, err := alice.InviteCode(ctx, c.group)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dave.Join(ctx, code); err != nil {
				t.Fatal(err)
			}
			for _, n := range []*Node{bob, dave} {
				eventually(t, 30*time.Second, n.id.Name+" in "+c.group+" with 3 members", func() bool {
					g := groupOf(t, n, c.group)
					return !g.Pending && g.Members == 3
				})
			}
			for _, n := range []*Node{alice, bob, dave} {
				if _, err := n.Send(ctx, c.group, "hello from "+n.id.Name); err != nil {
					t.Fatal(err)
				}
			}
			for _, n := range []*Node{alice, bob, dave} {
				eventually(t, 30*time.Second, n.id.Name+" has the 3 messages of "+c.group, func() bool {
					return len(texts(t, n, c.group)) == 3
				})
				if got := groupOf(t, n, c.group); got.Suite != uint16(c.want) || got.SuiteName != c.want.String() {
					t.Errorf("%s's groups: %s in 0x%04x %q, want 0x%04x", n.id.Name, c.group, got.Suite, got.SuiteName, uint16(c.want))
				}
				st, err := n.Status(ctx)
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(st.Groups, func(g api.GroupStatus) bool { return g.Name == c.group })
				if i < 0 || st.Groups[i].Suite != uint16(c.want) || st.Groups[i].SuiteName != c.want.String() {
					t.Errorf("%s's status of %s: %+v, want suite 0x%04x", n.id.Name, c.group, st.Groups, uint16(c.want))
				}
				members, err := n.Members(ctx, c.group)
				if err != nil || len(members) != 3 {
					t.Errorf("%s's members of %s: %v, %v", n.id.Name, c.group, members, err)
				}
			}
		})
	}
}

// TestCreateGroupRefusesSuitesNodesCannotUse: unknown suites, and suites
// whose signatures are not Ed25519 (a node's MLS key is its libp2p key),
// are ErrInvalid with a reason.
func TestCreateGroupRefusesSuitesNodesCannotUse(t *testing.T) {
	ctx := context.Background()
	alice := testNode(t, "alice")
	for _, s := range []string{"0x0099", "MLS_999", "2", "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448"} {
		if _, err := alice.CreateGroup(ctx, "g", api.WithSuite(s)); !errors.Is(err, api.ErrInvalid) {
			t.Errorf("CreateGroup in suite %q: %v, want ErrInvalid", s, err)
		}
	}
	if gs, _ := alice.Groups(ctx); len(gs) != 0 {
		t.Errorf("groups after refusals: %v", gs)
	}
	want := []suite.CipherSuite{1, 3, suite.MLS_256_XWING_AES256GCM_SHA512_Ed25519, suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519}
	if got := Suites(); !slices.Equal(got, want) {
		t.Errorf("Suites() = %v, want %v", got, want)
	}
}

// TestKeyPackagesAreServedPerSuite: the KeyPackage request names a suite
// (none: suite 1, as older nodes ask); the answer is of that suite, fresh
// within the ration and the suite's own last-resort KeyPackage past it.
func TestKeyPackagesAreServedPerSuite(t *testing.T) {
	ctx := context.Background()
	alice, bob := testNode(t, "alice"), testNode(t, "bob")
	befriend(t, alice, bob)
	c, err := alice.findContact("bob")
	if err != nil {
		t.Fatal(err)
	}
	fetch := func(req []byte) *wire.KeyPackage {
		t.Helper()
		data, err := alice.p2p.Request(ctx, bob.id.PeerID, protoKeyPackage, req)
		if err != nil {
			t.Fatal(err)
		}
		var m wire.MLSMessage
		if err := codec.Unmarshal(data, &m); err != nil || m.KeyPackage == nil {
			t.Fatalf("answer is no KeyPackage: %v", err)
		}
		return m.KeyPackage
	}
	if kp := fetch(nil); kp.CipherSuite != Suite {
		t.Errorf("request without a suite: KeyPackage of %v, want %v", kp.CipherSuite, Suite)
	}
	// Past the ration (one fresh KeyPackage a minute per peer): the
	// last-resort KeyPackage of each suite asked for, the same each time.
	var refs [][]byte
	xwing := suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519
	for _, cs := range []suite.CipherSuite{xwing, xwing, Suite} {
		kp := fetch(encodeKeyPackageRequest(cs))
		if kp.CipherSuite != cs {
			t.Fatalf("asked for %v, got a KeyPackage of %v", cs, kp.CipherSuite)
		}
		ref, err := kp.Ref()
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, ref)
	}
	if string(refs[0]) != string(refs[1]) || string(refs[0]) == string(refs[2]) {
		t.Errorf("last-resort KeyPackages: %x, want one per suite, the same each time", refs)
	}
	if _, err := alice.p2p.Request(ctx, bob.id.PeerID, protoKeyPackage, encodeKeyPackageRequest(2)); err == nil {
		t.Error("a KeyPackage request for suite 2 (P-256 signatures) was answered")
	}
	// keyPackageOf checks the suite of what it gets.
	if _, err := alice.keyPackageOf(ctx, c, suite.MLS_256_XWING_AES256GCM_SHA512_Ed25519); err != nil {
		t.Errorf("a KeyPackage of 0x0053: %v", err)
	}
}

// TestInviteCodesCarryTheSuite: an invite code names its group's suite,
// and codes of suite-1 groups stay as they were, for older nodes.
func TestInviteCodesCarryTheSuite(t *testing.T) {
	base := inviteCode{GroupID: make([]byte, 32), GroupName: "g", PeerID: testNode(t, "alice").id.PeerID, Token: make([]byte, 16)}
	for _, cs := range Suites() {
		c := base
		c.Suite = cs
		got, err := parseInviteCode(c.String())
		if err != nil || got.Suite != cs {
			t.Errorf("invite code of suite %v: read back %v, %v", cs, got, err)
		}
	}
	one, withSuite := base, base
	one.Suite, withSuite.Suite = Suite, suite.MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519
	if a, b := one.String(), withSuite.String(); len(b) <= len(a) {
		t.Errorf("codes of suites 1 and 0x0054 are %d and %d characters: suite 1's should be the older, shorter form", len(a), len(b))
	}
	bad := base
	bad.Suite = 2
	if _, err := parseInviteCode(bad.String()); !errors.Is(err, api.ErrBadCode) {
		t.Errorf("invite code of suite 2: %v, want ErrBadCode", err)
	}
}
