package wire

import (
	"bytes"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
)

// Extension is one extension (§7.2).
type Extension struct {
	Type ExtensionType
	Data []byte
}

// Extensions is an Extension list. Decoding rejects duplicate types.
type Extensions []Extension

// Find returns the data of the extension of type t.
func (e Extensions) Find(t ExtensionType) ([]byte, bool) {
	for _, x := range e {
		if x.Type == t {
			return x.Data, true
		}
	}
	return nil, false
}

// Has reports whether the list holds an extension of type t.
func (e Extensions) Has(t ExtensionType) bool {
	_, ok := e.Find(t)
	return ok
}

// Equal reports whether two lists are identical, in order.
func (e Extensions) Equal(o Extensions) bool {
	if len(e) != len(o) {
		return false
	}
	for i := range e {
		if e[i].Type != o[i].Type || !bytes.Equal(e[i].Data, o[i].Data) {
			return false
		}
	}
	return true
}

// MarshalMLS encodes Extension extensions<V>. The vector's length is
// computed first, so that the data (a whole ratchet tree in a GroupInfo,
// megabytes with X-Wing keys) is copied once.
func (e Extensions) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddVarint(b, uint64(e.bodyLen()))
	for _, x := range e {
		b.AddUint16(uint16(x.Type))
		codec.AddOpaque(b, x.Data)
	}
}

// bodyLen is the length of the encoded extensions<V> without its length
// prefix.
func (e Extensions) bodyLen() int {
	n := 0
	for _, x := range e {
		n += 2 + varintLen(len(x.Data)) + len(x.Data)
	}
	return n
}

// varintLen is the length of n's minimal variable-length encoding (values
// beyond the varint's range fail when encoded).
func varintLen(n int) int {
	switch {
	case n < 1<<6:
		return 1
	case n < 1<<14:
		return 2
	default:
		return 4
	}
}

// UnmarshalMLS decodes Extension extensions<V>, rejecting duplicates.
func (e *Extensions) UnmarshalMLS(s *cryptobyte.String) bool {
	var out Extensions
	ok := codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var x Extension
		if !s.ReadUint16((*uint16)(&x.Type)) || !codec.ReadOpaque(s, &x.Data) {
			return false
		}
		if out.Has(x.Type) {
			return false
		}
		out = append(out, x)
		return true
	})
	*e = out
	return ok
}

// Credential binds an identity to a signature key (§5.3).
type Credential struct {
	Type         CredentialType
	Identity     []byte   // basic
	Certificates [][]byte // x509, leaf first
}

// NewBasicCredential returns a basic credential for identity.
func NewBasicCredential(identity []byte) Credential {
	return Credential{Type: CredentialBasic, Identity: identity}
}

// Equal reports whether two credentials are identical.
func (c *Credential) Equal(o *Credential) bool {
	if c.Type != o.Type || !bytes.Equal(c.Identity, o.Identity) || len(c.Certificates) != len(o.Certificates) {
		return false
	}
	for i := range c.Certificates {
		if !bytes.Equal(c.Certificates[i], o.Certificates[i]) {
			return false
		}
	}
	return true
}

// MarshalMLS encodes Credential.
func (c *Credential) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(c.Type))
	switch c.Type {
	case CredentialBasic:
		codec.AddOpaque(b, c.Identity)
	case CredentialX509:
		codec.AddVector(b, func(b *cryptobyte.Builder) {
			for _, cert := range c.Certificates {
				codec.AddOpaque(b, cert)
			}
		})
	default:
		b.SetError(ErrInvalidStruct)
	}
}

// UnmarshalMLS decodes Credential. Credential types other than basic and
// x509 have no known encoding and are rejected.
func (c *Credential) UnmarshalMLS(s *cryptobyte.String) bool {
	*c = Credential{}
	if !s.ReadUint16((*uint16)(&c.Type)) {
		return false
	}
	switch c.Type {
	case CredentialBasic:
		return codec.ReadOpaque(s, &c.Identity)
	case CredentialX509:
		return codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var cert []byte
			if !codec.ReadOpaque(s, &cert) {
				return false
			}
			c.Certificates = append(c.Certificates, cert)
			return true
		})
	}
	return false
}

// Capabilities lists what a client supports (§7.2).
type Capabilities struct {
	Versions     []ProtocolVersion
	CipherSuites []suite.CipherSuite
	Extensions   []ExtensionType
	Proposals    []ProposalType
	Credentials  []CredentialType
}

func addUint16s[T ~uint16](b *cryptobyte.Builder, v []T) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for _, x := range v {
			b.AddUint16(uint16(x))
		}
	})
}

func readUint16s[T ~uint16](s *cryptobyte.String, out *[]T) bool {
	var body cryptobyte.String
	if !codec.ReadVector(s, &body) || len(body)%2 != 0 {
		return false
	}
	v := make([]T, 0, len(body)/2)
	for !body.Empty() {
		var x uint16
		body.ReadUint16(&x)
		v = append(v, T(x))
	}
	*out = v
	return true
}

// MarshalMLS encodes Capabilities.
func (c *Capabilities) MarshalMLS(b *cryptobyte.Builder) {
	addUint16s(b, c.Versions)
	addUint16s(b, c.CipherSuites)
	addUint16s(b, c.Extensions)
	addUint16s(b, c.Proposals)
	addUint16s(b, c.Credentials)
}

// UnmarshalMLS decodes Capabilities.
func (c *Capabilities) UnmarshalMLS(s *cryptobyte.String) bool {
	return readUint16s(s, &c.Versions) &&
		readUint16s(s, &c.CipherSuites) &&
		readUint16s(s, &c.Extensions) &&
		readUint16s(s, &c.Proposals) &&
		readUint16s(s, &c.Credentials)
}

// HasExtension reports whether t is supported: listed, or a default type.
func (c *Capabilities) HasExtension(t ExtensionType) bool {
	return t.IsDefault() || contains(c.Extensions, t)
}

// HasProposal reports whether t is supported: listed, or a default type.
func (c *Capabilities) HasProposal(t ProposalType) bool {
	return t.IsDefault() || contains(c.Proposals, t)
}

// HasCredential reports whether t is listed.
func (c *Capabilities) HasCredential(t CredentialType) bool { return contains(c.Credentials, t) }

// HasCipherSuite reports whether cs is listed.
func (c *Capabilities) HasCipherSuite(cs suite.CipherSuite) bool { return contains(c.CipherSuites, cs) }

// HasVersion reports whether v is listed.
func (c *Capabilities) HasVersion(v ProtocolVersion) bool { return contains(c.Versions, v) }

func contains[T comparable](list []T, x T) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

// Lifetime bounds the validity of a KeyPackage's leaf, in seconds since
// the Unix epoch (§7.2).
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// MarshalMLS encodes Lifetime.
func (l *Lifetime) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint64(l.NotBefore)
	b.AddUint64(l.NotAfter)
}

// UnmarshalMLS decodes Lifetime.
func (l *Lifetime) UnmarshalMLS(s *cryptobyte.String) bool {
	return s.ReadUint64(&l.NotBefore) && s.ReadUint64(&l.NotAfter)
}

// HPKECiphertext is an HPKE encapsulation and ciphertext (§7.6).
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// MarshalMLS encodes HPKECiphertext.
func (c *HPKECiphertext) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, c.KEMOutput)
	codec.AddOpaque(b, c.Ciphertext)
}

// UnmarshalMLS decodes HPKECiphertext.
func (c *HPKECiphertext) UnmarshalMLS(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &c.KEMOutput) && codec.ReadOpaque(s, &c.Ciphertext)
}
