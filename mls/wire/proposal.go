package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
)

// Proposal is the body of one proposal (§12.1). The concrete types are
// *Add, *Update, *Remove, *PreSharedKey, *ReInit, *ExternalInit,
// *GroupContextExtensions and *SelfRemove. MarshalMLS encodes the body only; use
// MarshalProposal and ReadProposal for the type-tagged Proposal struct.
type Proposal interface {
	ProposalType() ProposalType
	codec.Marshaler
}

// Add adds a client (§12.1.1).
type Add struct{ KeyPackage KeyPackage }

// Update replaces the sender's leaf (§12.1.2).
type Update struct{ LeafNode LeafNode }

// Remove removes a member (§12.1.3).
type Remove struct{ Removed uint32 }

// PreSharedKey injects a PSK into the key schedule (§12.1.4).
type PreSharedKey struct{ PSK PreSharedKeyID }

// ReInit requests that the group be reinitialized (§12.1.5).
type ReInit struct {
	GroupID     []byte
	Version     ProtocolVersion
	CipherSuite suite.CipherSuite
	Extensions  Extensions
}

// ExternalInit carries the KEM output of an external commit (§12.1.6).
type ExternalInit struct{ KEMOutput []byte }

// GroupContextExtensions replaces the group's extensions (§12.1.7).
type GroupContextExtensions struct{ Extensions Extensions }

// SelfRemove asks that the sender's own leaf be removed
// (draft-ietf-mls-extensions-09, "SelfRemove Proposal"): struct {}.
type SelfRemove struct{}

func (*Add) ProposalType() ProposalType          { return ProposalAdd }
func (*Update) ProposalType() ProposalType       { return ProposalUpdate }
func (*Remove) ProposalType() ProposalType       { return ProposalRemove }
func (*PreSharedKey) ProposalType() ProposalType { return ProposalPreSharedKey }
func (*ReInit) ProposalType() ProposalType       { return ProposalReInit }
func (*ExternalInit) ProposalType() ProposalType { return ProposalExternalInit }
func (*GroupContextExtensions) ProposalType() ProposalType {
	return ProposalGroupContextExtensions
}
func (*SelfRemove) ProposalType() ProposalType { return ProposalSelfRemove }

// MarshalMLS encodes Add.
func (p *Add) MarshalMLS(b *cryptobyte.Builder) { p.KeyPackage.MarshalMLS(b) }

// UnmarshalMLS decodes Add.
func (p *Add) UnmarshalMLS(s *cryptobyte.String) bool { return p.KeyPackage.UnmarshalMLS(s) }

// MarshalMLS encodes Update.
func (p *Update) MarshalMLS(b *cryptobyte.Builder) { p.LeafNode.MarshalMLS(b) }

// UnmarshalMLS decodes Update.
func (p *Update) UnmarshalMLS(s *cryptobyte.String) bool { return p.LeafNode.UnmarshalMLS(s) }

// MarshalMLS encodes Remove.
func (p *Remove) MarshalMLS(b *cryptobyte.Builder) { b.AddUint32(p.Removed) }

// UnmarshalMLS decodes Remove.
func (p *Remove) UnmarshalMLS(s *cryptobyte.String) bool { return s.ReadUint32(&p.Removed) }

// MarshalMLS encodes PreSharedKey.
func (p *PreSharedKey) MarshalMLS(b *cryptobyte.Builder) { p.PSK.MarshalMLS(b) }

// UnmarshalMLS decodes PreSharedKey.
func (p *PreSharedKey) UnmarshalMLS(s *cryptobyte.String) bool { return p.PSK.UnmarshalMLS(s) }

// MarshalMLS encodes ReInit.
func (p *ReInit) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, p.GroupID)
	b.AddUint16(uint16(p.Version))
	b.AddUint16(uint16(p.CipherSuite))
	p.Extensions.MarshalMLS(b)
}

// UnmarshalMLS decodes ReInit.
func (p *ReInit) UnmarshalMLS(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &p.GroupID) &&
		s.ReadUint16((*uint16)(&p.Version)) &&
		s.ReadUint16((*uint16)(&p.CipherSuite)) &&
		p.Extensions.UnmarshalMLS(s)
}

// MarshalMLS encodes ExternalInit.
func (p *ExternalInit) MarshalMLS(b *cryptobyte.Builder) { codec.AddOpaque(b, p.KEMOutput) }

// UnmarshalMLS decodes ExternalInit.
func (p *ExternalInit) UnmarshalMLS(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &p.KEMOutput)
}

// MarshalMLS encodes GroupContextExtensions.
func (p *GroupContextExtensions) MarshalMLS(b *cryptobyte.Builder) { p.Extensions.MarshalMLS(b) }

// UnmarshalMLS decodes GroupContextExtensions.
func (p *GroupContextExtensions) UnmarshalMLS(s *cryptobyte.String) bool {
	return p.Extensions.UnmarshalMLS(s)
}

// MarshalMLS encodes SelfRemove, an empty struct.
func (*SelfRemove) MarshalMLS(*cryptobyte.Builder) {}

// UnmarshalMLS decodes SelfRemove, an empty struct.
func (*SelfRemove) UnmarshalMLS(*cryptobyte.String) bool { return true }

// MarshalProposal encodes the Proposal struct: the type, then the body.
func MarshalProposal(b *cryptobyte.Builder, p Proposal) {
	if p == nil {
		b.SetError(ErrInvalidStruct)
		return
	}
	b.AddUint16(uint16(p.ProposalType()))
	p.MarshalMLS(b)
}

// ReadProposal decodes the Proposal struct. Proposal types without a known
// encoding are rejected.
func ReadProposal(s *cryptobyte.String, out *Proposal) bool {
	var t uint16
	if !s.ReadUint16(&t) {
		return false
	}
	var p interface {
		Proposal
		codec.Unmarshaler
	}
	switch ProposalType(t) {
	case ProposalAdd:
		p = new(Add)
	case ProposalUpdate:
		p = new(Update)
	case ProposalRemove:
		p = new(Remove)
	case ProposalPreSharedKey:
		p = new(PreSharedKey)
	case ProposalReInit:
		p = new(ReInit)
	case ProposalExternalInit:
		p = new(ExternalInit)
	case ProposalGroupContextExtensions:
		p = new(GroupContextExtensions)
	case ProposalSelfRemove:
		p = new(SelfRemove)
	default:
		return false
	}
	if !p.UnmarshalMLS(s) {
		return false
	}
	*out = p
	return true
}

// ProposalMessage wraps a Proposal so that the type-tagged encoding can be
// passed to codec.Marshal and codec.Unmarshal.
type ProposalMessage struct{ Proposal Proposal }

// MarshalMLS encodes the Proposal struct.
func (m *ProposalMessage) MarshalMLS(b *cryptobyte.Builder) { MarshalProposal(b, m.Proposal) }

// UnmarshalMLS decodes the Proposal struct.
func (m *ProposalMessage) UnmarshalMLS(s *cryptobyte.String) bool {
	return ReadProposal(s, &m.Proposal)
}

// PreSharedKeyID identifies a PSK (§8.4).
type PreSharedKeyID struct {
	Type       PSKType
	PSKID      []byte             // external
	Usage      ResumptionPSKUsage // resumption
	PSKGroupID []byte             // resumption
	PSKEpoch   uint64             // resumption
	Nonce      []byte
}

// MarshalMLS encodes PreSharedKeyID.
func (p *PreSharedKeyID) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint8(uint8(p.Type))
	switch p.Type {
	case PSKExternal:
		codec.AddOpaque(b, p.PSKID)
	case PSKResumption:
		b.AddUint8(uint8(p.Usage))
		codec.AddOpaque(b, p.PSKGroupID)
		b.AddUint64(p.PSKEpoch)
	default:
		b.SetError(ErrInvalidStruct)
	}
	codec.AddOpaque(b, p.Nonce)
}

// UnmarshalMLS decodes PreSharedKeyID.
func (p *PreSharedKeyID) UnmarshalMLS(s *cryptobyte.String) bool {
	*p = PreSharedKeyID{}
	if !s.ReadUint8((*uint8)(&p.Type)) {
		return false
	}
	switch p.Type {
	case PSKExternal:
		if !codec.ReadOpaque(s, &p.PSKID) {
			return false
		}
	case PSKResumption:
		if !s.ReadUint8((*uint8)(&p.Usage)) ||
			!codec.ReadOpaque(s, &p.PSKGroupID) ||
			!s.ReadUint64(&p.PSKEpoch) {
			return false
		}
	default:
		return false
	}
	return codec.ReadOpaque(s, &p.Nonce)
}

// ProposalOrRef is a proposal inline or by reference in a Commit (§12.4).
type ProposalOrRef struct {
	Proposal  Proposal // set for an inline proposal
	Reference []byte   // ProposalRef, set when Proposal is nil
}

// MarshalMLS encodes ProposalOrRef.
func (p *ProposalOrRef) MarshalMLS(b *cryptobyte.Builder) {
	if p.Proposal != nil {
		b.AddUint8(uint8(ProposalOrRefProposal))
		MarshalProposal(b, p.Proposal)
		return
	}
	b.AddUint8(uint8(ProposalOrRefReference))
	codec.AddOpaque(b, p.Reference)
}

// UnmarshalMLS decodes ProposalOrRef.
func (p *ProposalOrRef) UnmarshalMLS(s *cryptobyte.String) bool {
	*p = ProposalOrRef{}
	var t uint8
	if !s.ReadUint8(&t) {
		return false
	}
	switch ProposalOrRefType(t) {
	case ProposalOrRefProposal:
		return ReadProposal(s, &p.Proposal)
	case ProposalOrRefReference:
		return codec.ReadOpaque(s, &p.Reference)
	}
	return false
}

// Commit applies proposals and optionally a path update (§12.4).
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// MarshalMLS encodes Commit.
func (c *Commit) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range c.Proposals {
			c.Proposals[i].MarshalMLS(b)
		}
	})
	codec.AddOptional(b, c.Path != nil, func(b *cryptobyte.Builder) { c.Path.MarshalMLS(b) })
}

// UnmarshalMLS decodes Commit.
func (c *Commit) UnmarshalMLS(s *cryptobyte.String) bool {
	*c = Commit{}
	if !codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var p ProposalOrRef
		if !p.UnmarshalMLS(s) {
			return false
		}
		c.Proposals = append(c.Proposals, p)
		return true
	}) {
		return false
	}
	var present bool
	if !codec.ReadOptional(s, &present) {
		return false
	}
	if present {
		c.Path = new(UpdatePath)
		return c.Path.UnmarshalMLS(s)
	}
	return true
}
