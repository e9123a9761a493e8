package node

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/parley-p2p/parley/cmd/node/api"
	"github.com/parley-p2p/parley/mls/suite"
)

// DefaultSuite is the cipher suite of new groups unless their creator
// picks another, and of the last-resort KeyPackage of the contact code.
// It stays suite 1 until the post-quantum
// MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519 meets its cost goals
// (issue 19: joining a 10,000-member group under 1.5 times suite 1's
// time); groups can be made in that suite with 'group create --suite'.
const DefaultSuite = Suite

// ErrSuite reports a cipher suite a node cannot use for a group.
var ErrSuite = errors.New("node: cipher suite not usable")

// Suites are the cipher suites nodes can use, in the order of suite.All:
// those whose signatures are Ed25519, since a member's MLS signature key
// is its libp2p identity key.
var Suites = sync.OnceValue(func() []suite.CipherSuite {
	seed := make([]byte, ed25519.SeedSize)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	var out []suite.CipherSuite
	for _, cs := range suite.All {
		if k, err := cs.ParseSignaturePrivateKey(seed); err == nil && bytes.Equal(k.PublicKey(), pub) {
			out = append(out, cs)
		}
	}
	return out
})

// ParseSuite reads a cipher suite's name or number (as suite.Parse does)
// and checks that nodes can use it.
func ParseSuite(s string) (suite.CipherSuite, error) {
	cs, err := suite.Parse(s)
	if err != nil {
		return 0, fmt.Errorf("%w: unknown cipher suite %q ('parley suites' lists them)", ErrSuite, s)
	}
	return cs, checkSuite(cs)
}

// checkSuite reports whether nodes can use cs.
func checkSuite(cs suite.CipherSuite) error {
	if slices.Contains(Suites(), cs) {
		return nil
	}
	var names []string
	for _, s := range Suites() {
		names = append(names, fmt.Sprintf("0x%04x", uint16(s)))
	}
	return fmt.Errorf("%w: %v (0x%04x) does not sign with Ed25519, the key of a Parley identity; groups can use %s",
		ErrSuite, cs, uint16(cs), strings.Join(names, ", "))
}

// suite is the group's cipher suite.
func (g *groupRunner) suite() suite.CipherSuite {
	if g.meta.Suite == 0 {
		return Suite
	}
	return suite.CipherSuite(g.meta.Suite)
}

// withSuite sets the group's suite in its view, unless its record is
// unreadable.
func (g *groupRunner) withSuite(v api.Group) api.Group {
	if g.damaged != damageRecord {
		cs := g.suite()
		v.Suite, v.SuiteName = uint16(cs), cs.String()
	}
	return v
}
