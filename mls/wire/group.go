package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
)

// GroupContext is the group's shared state summary (§8.1).
type GroupContext struct {
	Version                 ProtocolVersion
	CipherSuite             suite.CipherSuite
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              Extensions
}

// MarshalMLS encodes GroupContext.
func (g *GroupContext) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(g.Version))
	b.AddUint16(uint16(g.CipherSuite))
	codec.AddOpaque(b, g.GroupID)
	b.AddUint64(g.Epoch)
	codec.AddOpaque(b, g.TreeHash)
	codec.AddOpaque(b, g.ConfirmedTranscriptHash)
	g.Extensions.MarshalMLS(b)
}

// UnmarshalMLS decodes GroupContext.
func (g *GroupContext) UnmarshalMLS(s *cryptobyte.String) bool {
	*g = GroupContext{}
	return s.ReadUint16((*uint16)(&g.Version)) &&
		s.ReadUint16((*uint16)(&g.CipherSuite)) &&
		codec.ReadOpaque(s, &g.GroupID) &&
		s.ReadUint64(&g.Epoch) &&
		codec.ReadOpaque(s, &g.TreeHash) &&
		codec.ReadOpaque(s, &g.ConfirmedTranscriptHash) &&
		g.Extensions.UnmarshalMLS(s)
}

// GroupInfo describes a group to joiners (§12.4.3).
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      Extensions
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

func (g *GroupInfo) marshalBody(b *cryptobyte.Builder) {
	g.GroupContext.MarshalMLS(b)
	g.Extensions.MarshalMLS(b)
	codec.AddOpaque(b, g.ConfirmationTag)
	b.AddUint32(g.Signer)
}

// MarshalMLS encodes GroupInfo.
func (g *GroupInfo) MarshalMLS(b *cryptobyte.Builder) {
	g.marshalBody(b)
	codec.AddOpaque(b, g.Signature)
}

// UnmarshalMLS decodes GroupInfo.
func (g *GroupInfo) UnmarshalMLS(s *cryptobyte.String) bool {
	*g = GroupInfo{}
	return g.GroupContext.UnmarshalMLS(s) &&
		g.Extensions.UnmarshalMLS(s) &&
		codec.ReadOpaque(s, &g.ConfirmationTag) &&
		s.ReadUint32(&g.Signer) &&
		codec.ReadOpaque(s, &g.Signature)
}

// GroupInfoTBSLabel is the SignWithLabel label of a GroupInfo.
const GroupInfoTBSLabel = "GroupInfoTBS"

// TBS returns the encoding of GroupInfoTBS.
func (g *GroupInfo) TBS() ([]byte, error) {
	// Room for the whole encoding, so that a large ratchet_tree extension
	// is copied once.
	c := &g.GroupContext
	size := 64 + len(c.GroupID) + len(c.TreeHash) + len(c.ConfirmedTranscriptHash) +
		c.Extensions.bodyLen() + g.Extensions.bodyLen() + len(g.ConfirmationTag)
	b := cryptobyte.NewBuilder(make([]byte, 0, size))
	g.marshalBody(b)
	return b.Bytes()
}

// Sign sets the signature of the GroupInfo.
func (g *GroupInfo) Sign(key *suite.SignaturePrivateKey) error {
	tbs, err := g.TBS()
	if err != nil {
		return err
	}
	sig, err := g.GroupContext.CipherSuite.SignWithLabel(key, GroupInfoTBSLabel, tbs, nil)
	if err != nil {
		return err
	}
	g.Signature = sig
	return nil
}

// VerifySignature checks the signature against the signer's public key.
func (g *GroupInfo) VerifySignature(pub []byte) error {
	tbs, err := g.TBS()
	if err != nil {
		return err
	}
	return g.GroupContext.CipherSuite.VerifyWithLabel(pub, GroupInfoTBSLabel, tbs, g.Signature)
}

// GroupSecrets is what a Welcome encrypts to each new member (§12.4.3.1).
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   []byte // present when HasPathSecret
	// HasPathSecret distinguishes an absent path secret from an empty one.
	HasPathSecret bool
	PSKs          []PreSharedKeyID
}

// MarshalMLS encodes GroupSecrets.
func (g *GroupSecrets) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddOpaque(b, g.JoinerSecret)
	codec.AddOptional(b, g.HasPathSecret, func(b *cryptobyte.Builder) { codec.AddOpaque(b, g.PathSecret) })
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range g.PSKs {
			g.PSKs[i].MarshalMLS(b)
		}
	})
}

// UnmarshalMLS decodes GroupSecrets.
func (g *GroupSecrets) UnmarshalMLS(s *cryptobyte.String) bool {
	*g = GroupSecrets{}
	if !codec.ReadOpaque(s, &g.JoinerSecret) || !codec.ReadOptional(s, &g.HasPathSecret) {
		return false
	}
	if g.HasPathSecret && !codec.ReadOpaque(s, &g.PathSecret) {
		return false
	}
	return codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var p PreSharedKeyID
		if !p.UnmarshalMLS(s) {
			return false
		}
		g.PSKs = append(g.PSKs, p)
		return true
	})
}

// EncryptedGroupSecrets is one new member's entry in a Welcome.
type EncryptedGroupSecrets struct {
	NewMember             []byte // KeyPackageRef
	EncryptedGroupSecrets HPKECiphertext
}

// Welcome invites new members into a group (§12.4.3.1).
type Welcome struct {
	CipherSuite        suite.CipherSuite
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// MarshalMLS encodes Welcome.
func (w *Welcome) MarshalMLS(b *cryptobyte.Builder) {
	b.AddUint16(uint16(w.CipherSuite))
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range w.Secrets {
			codec.AddOpaque(b, w.Secrets[i].NewMember)
			w.Secrets[i].EncryptedGroupSecrets.MarshalMLS(b)
		}
	})
	codec.AddOpaque(b, w.EncryptedGroupInfo)
}

// UnmarshalMLS decodes Welcome.
func (w *Welcome) UnmarshalMLS(s *cryptobyte.String) bool {
	*w = Welcome{}
	return s.ReadUint16((*uint16)(&w.CipherSuite)) &&
		codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
			var e EncryptedGroupSecrets
			if !codec.ReadOpaque(s, &e.NewMember) || !e.EncryptedGroupSecrets.UnmarshalMLS(s) {
				return false
			}
			w.Secrets = append(w.Secrets, e)
			return true
		}) &&
		codec.ReadOpaque(s, &w.EncryptedGroupInfo)
}

// RequiredCapabilities is the required_capabilities extension (§11.1).
type RequiredCapabilities struct {
	Extensions  []ExtensionType
	Proposals   []ProposalType
	Credentials []CredentialType
}

// MarshalMLS encodes RequiredCapabilities.
func (r *RequiredCapabilities) MarshalMLS(b *cryptobyte.Builder) {
	addUint16s(b, r.Extensions)
	addUint16s(b, r.Proposals)
	addUint16s(b, r.Credentials)
}

// UnmarshalMLS decodes RequiredCapabilities.
func (r *RequiredCapabilities) UnmarshalMLS(s *cryptobyte.String) bool {
	return readUint16s(s, &r.Extensions) && readUint16s(s, &r.Proposals) && readUint16s(s, &r.Credentials)
}

// ExternalPub is the external_pub extension of a GroupInfo (§12.4.3.2).
type ExternalPub struct{ PublicKey []byte }

// MarshalMLS encodes ExternalPub.
func (e *ExternalPub) MarshalMLS(b *cryptobyte.Builder) { codec.AddOpaque(b, e.PublicKey) }

// UnmarshalMLS decodes ExternalPub.
func (e *ExternalPub) UnmarshalMLS(s *cryptobyte.String) bool {
	return codec.ReadOpaque(s, &e.PublicKey)
}

// ExternalSender is one entry of the external_senders extension (§12.1.8.1).
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// ExternalSenders is the external_senders extension.
type ExternalSenders []ExternalSender

// MarshalMLS encodes ExternalSenders.
func (e ExternalSenders) MarshalMLS(b *cryptobyte.Builder) {
	codec.AddVector(b, func(b *cryptobyte.Builder) {
		for i := range e {
			codec.AddOpaque(b, e[i].SignatureKey)
			e[i].Credential.MarshalMLS(b)
		}
	})
}

// UnmarshalMLS decodes ExternalSenders.
func (e *ExternalSenders) UnmarshalMLS(s *cryptobyte.String) bool {
	var out ExternalSenders
	ok := codec.ReadVectorElems(s, func(s *cryptobyte.String) bool {
		var x ExternalSender
		if !codec.ReadOpaque(s, &x.SignatureKey) || !x.Credential.UnmarshalMLS(s) {
			return false
		}
		out = append(out, x)
		return true
	})
	*e = out
	return ok
}

// ApplicationID is the application_id extension of a LeafNode (§5.3.3).
type ApplicationID struct{ ID []byte }

// MarshalMLS encodes ApplicationID.
func (a *ApplicationID) MarshalMLS(b *cryptobyte.Builder) { codec.AddOpaque(b, a.ID) }

// UnmarshalMLS decodes ApplicationID.
func (a *ApplicationID) UnmarshalMLS(s *cryptobyte.String) bool { return codec.ReadOpaque(s, &a.ID) }
