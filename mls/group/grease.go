package group

import (
	"fmt"
	"io"
	"slices"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// GREASE (§13.5). With the switch on (KeyPackageOptions.Grease,
// Config.Grease), the objects this member creates carry random GREASE
// values in the fields where a correct receiver ignores unknown values:
//
//   - LeafNode.capabilities: one to three values each in cipher_suites,
//     extensions, proposals and credentials (not versions, which §13.5 does
//     not list);
//   - LeafNode.extensions: one empty GREASE extension, whose type is among
//     those of capabilities.extensions (§7.3 requires it);
//   - KeyPackage.extensions: one GREASE extension with random data; its type
//     is listed in capabilities.extensions too, so that receivers applying
//     the first rule of §10 strictly accept it as well;
//   - GroupInfo.extensions: one GREASE extension with random data.
//
// Never anywhere else: not in Proposal.proposal_type,
// Credential.credential_type, GroupContext.extensions or
// GroupContextExtensions.extensions (§13.5 forbids them there), and not as
// the version or cipher suite of a KeyPackage or group. The leaves an
// Update or a commit creates copy the member's current leaf, GREASE
// included. Receiving needs no GREASE rule: unknown values are ignored
// where the RFC says so, whatever they are; only a member's view of its
// own capabilities leaves GREASE out (ownCapabilities).

// maxGREASEData bounds the random data of a GREASE extension.
const maxGREASEData = 16

// greaser draws GREASE values from a source of randomness.
type greaser struct {
	r   io.Reader
	err error
}

// next returns a random byte (0 once reading failed; the error is kept).
func (g *greaser) next() byte {
	var b [1]byte
	if g.err == nil {
		_, g.err = io.ReadFull(g.r, b[:])
	}
	return b[0]
}

// pick returns n distinct GREASE values, 1 <= n <= 3, in random order.
func (g *greaser) pick() []uint16 {
	vals := wire.GREASE
	n := 1 + int(g.next())%3
	for i := range n { // a partial Fisher-Yates shuffle
		j := i + int(g.next())%(len(vals)-i)
		vals[i], vals[j] = vals[j], vals[i]
	}
	return vals[:n]
}

// data returns 0 to maxGREASEData random bytes.
func (g *greaser) data() []byte {
	b := make([]byte, int(g.next())%(maxGREASEData+1))
	if g.err == nil {
		_, g.err = io.ReadFull(g.r, b)
	}
	return b
}

// insertGREASE puts the values of add that list lacks at random positions of a
// copy of list.
func insertGREASE[T ~uint16](g *greaser, list []T, add []uint16) []T {
	out := slices.Clone(list)
	for _, v := range add {
		if slices.Contains(out, T(v)) {
			continue
		}
		out = slices.Insert(out, int(g.next())%(len(out)+1), T(v))
	}
	return out
}

// extension inserts a GREASE extension of type t at a random position of a
// copy of exts, unless exts already has one of that type.
func (g *greaser) extension(exts wire.Extensions, t wire.ExtensionType, data []byte) wire.Extensions {
	out := slices.Clone(exts)
	if out.Has(t) {
		return out
	}
	return slices.Insert(out, int(g.next())%(len(out)+1), wire.Extension{Type: t, Data: data})
}

// leaf adds GREASE values to the capabilities and extensions of a leaf
// template (copies: the caller's slices are left alone). It returns the
// GREASE extension types listed in the capabilities.
func (g *greaser) leaf(l *wire.LeafNode) []uint16 {
	c := &l.Capabilities
	c.CipherSuites = insertGREASE[suite.CipherSuite](g, c.CipherSuites, g.pick())
	exts := g.pick()
	c.Extensions = insertGREASE[wire.ExtensionType](g, c.Extensions, exts)
	c.Proposals = insertGREASE[wire.ProposalType](g, c.Proposals, g.pick())
	c.Credentials = insertGREASE[wire.CredentialType](g, c.Credentials, g.pick())
	l.Extensions = g.extension(l.Extensions, wire.ExtensionType(exts[0]), []byte{})
	return exts
}

// failed returns the error of a failed read of randomness, if any.
func (g *greaser) failed() error {
	if g.err != nil {
		return fmt.Errorf("group: reading randomness: %w", g.err)
	}
	return nil
}

// ownCapabilities returns a member's real capabilities: those of its leaf
// without the GREASE values it may have added, since a client represents
// its own capabilities without them (§13.5).
func ownCapabilities(c *wire.Capabilities) *wire.Capabilities {
	return &wire.Capabilities{
		Versions:     withoutGREASE(c.Versions),
		CipherSuites: withoutGREASE(c.CipherSuites),
		Extensions:   withoutGREASE(c.Extensions),
		Proposals:    withoutGREASE(c.Proposals),
		Credentials:  withoutGREASE(c.Credentials),
	}
}

func withoutGREASE[T ~uint16](v []T) []T {
	return slices.DeleteFunc(slices.Clone(v), wire.IsGREASE[T])
}
