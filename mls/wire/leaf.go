package wire

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/suite"
)

// LeafNode describes one member in the ratchet tree (§7.2).
type LeafNode struct {
	EncryptionKey []byte // HPKEPublicKey
	SignatureKey  []byte // SignaturePublicKey
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime // Source == key_package
	ParentHash    []byte   // Source == commit
	Extensions    Extensions
	Signature     []byte
}

func (l *LeafNode) marshalBody(b *cryptobyte.Builder) {
	codec.AddOpaque(b, l.EncryptionKey)
	codec.AddOpaque(b, l.SignatureKey)
	l.Credential.MarshalMLS(b)
	l.Capabilities.MarshalMLS(b)
	b.AddUint8(uint8(l.Source))
	switch l.Source {
	case LeafNodeSourceKeyPackage:
		l.Lifetime.MarshalMLS(b)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		codec.AddOpaque(b, l.ParentHash)
	default:
		b.SetError(ErrInvalidStruct)
	}
	l.Extensions.MarshalMLS(b)
}

// MarshalMLS encodes LeafNode.
func (l *LeafNode) MarshalMLS(b *cryptobyte.Builder) {
	l.marshalBody(b)
	codec.AddOpaque(b, l.Signature)
}

// UnmarshalMLS decodes LeafNode.
func (l *LeafNode) UnmarshalMLS(s *cryptobyte.String) bool {
	*l = LeafNode{}
	if !codec.ReadOpaque(s, &l.EncryptionKey) ||
		!codec.ReadOpaque(s, &l.SignatureKey) ||
		!l.Credential.UnmarshalMLS(s) ||
		!l.Capabilities.UnmarshalMLS(s) ||
		!s.ReadUint8((*uint8)(&l.Source)) {
		return false
	}
	switch l.Source {
	case LeafNodeSourceKeyPackage:
		if !l.Lifetime.UnmarshalMLS(s) {
			return false
		}
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		if !codec.ReadOpaque(s, &l.ParentHash) {
			return false
		}
	default:
		return false
	}
	return l.Extensions.UnmarshalMLS(s) && codec.ReadOpaque(s, &l.Signature)
}

// TBS returns the encoding of LeafNodeTBS: the content its signature
// covers. groupID and leafIndex are used for update and commit leaves.
func (l *LeafNode) TBS(groupID []byte, leafIndex uint32) ([]byte, error) {
	b := cryptobyte.NewBuilder(make([]byte, 0, l.sizeHint()+len(groupID)+8))
	l.marshalBody(b)
	switch l.Source {
	case LeafNodeSourceUpdate, LeafNodeSourceCommit:
		codec.AddOpaque(b, groupID)
		b.AddUint32(leafIndex)
	}
	return b.Bytes()
}

// sizeHint is about the size of the leaf's encoding: room enough, in
// the common case, to encode it without growing the buffer (an X-Wing
// leaf is 1.4 KB).
func (l *LeafNode) sizeHint() int {
	n := 128 + len(l.EncryptionKey) + len(l.SignatureKey) + len(l.Credential.Identity) +
		len(l.ParentHash) + l.Extensions.bodyLen() + len(l.Signature)
	for _, c := range l.Credential.Certificates {
		n += 4 + len(c)
	}
	return n + 2*(len(l.Capabilities.Versions)+len(l.Capabilities.CipherSuites)+
		len(l.Capabilities.Extensions)+len(l.Capabilities.Proposals)+len(l.Capabilities.Credentials))
}

// LeafNodeTBSLabel is the SignWithLabel label of a LeafNode.
const LeafNodeTBSLabel = "LeafNodeTBS"

// Sign sets the signature of the leaf (§7.2).
func (l *LeafNode) Sign(cs suite.CipherSuite, key *suite.SignaturePrivateKey, groupID []byte, leafIndex uint32) error {
	tbs, err := l.TBS(groupID, leafIndex)
	if err != nil {
		return err
	}
	sig, err := cs.SignWithLabel(key, LeafNodeTBSLabel, tbs, nil)
	if err != nil {
		return err
	}
	l.Signature = sig
	return nil
}

// VerifySignature checks the signature of the leaf against its own
// signature key (§7.3).
func (l *LeafNode) VerifySignature(cs suite.CipherSuite, groupID []byte, leafIndex uint32) error {
	tbs, err := l.TBS(groupID, leafIndex)
	if err != nil {
		return err
	}
	return cs.VerifyWithLabel(l.SignatureKey, LeafNodeTBSLabel, tbs, l.Signature)
}

// VerifySignatureRepeated is VerifySignature through
// cs.VerifyWithLabelRepeated, for a member's key, which signs often.
func (l *LeafNode) VerifySignatureRepeated(cs suite.CipherSuite, groupID []byte, leafIndex uint32) error {
	tbs, err := l.TBS(groupID, leafIndex)
	if err != nil {
		return err
	}
	return cs.VerifyWithLabelRepeated(l.SignatureKey, LeafNodeTBSLabel, tbs, l.Signature)
}

// KeyPackage is a client's offer to be added to groups (§10).
type KeyPackage struct {
	Version     ProtocolVersion
	CipherSuite suite.CipherSuite
	InitKey     []byte // HPKEPublicKey
	LeafNode    LeafNode
	Extensions  Extensions
	Signature   []byte
}

func (k *KeyPackage) marshalBody(b *cryptobyte.Builder) {
	b.AddUint16(uint16(k.Version))
	b.AddUint16(uint16(k.CipherSuite))
	codec.AddOpaque(b, k.InitKey)
	k.LeafNode.MarshalMLS(b)
	k.Extensions.MarshalMLS(b)
}

// MarshalMLS encodes KeyPackage.
func (k *KeyPackage) MarshalMLS(b *cryptobyte.Builder) {
	k.marshalBody(b)
	codec.AddOpaque(b, k.Signature)
}

// UnmarshalMLS decodes KeyPackage.
func (k *KeyPackage) UnmarshalMLS(s *cryptobyte.String) bool {
	*k = KeyPackage{}
	return s.ReadUint16((*uint16)(&k.Version)) &&
		s.ReadUint16((*uint16)(&k.CipherSuite)) &&
		codec.ReadOpaque(s, &k.InitKey) &&
		k.LeafNode.UnmarshalMLS(s) &&
		k.Extensions.UnmarshalMLS(s) &&
		codec.ReadOpaque(s, &k.Signature)
}

// TBS returns the encoding of KeyPackageTBS.
func (k *KeyPackage) TBS() ([]byte, error) {
	var b cryptobyte.Builder
	k.marshalBody(&b)
	return b.Bytes()
}

// KeyPackageTBSLabel is the SignWithLabel label of a KeyPackage.
const KeyPackageTBSLabel = "KeyPackageTBS"

// Sign sets the signature of the KeyPackage (§10).
func (k *KeyPackage) Sign(key *suite.SignaturePrivateKey) error {
	tbs, err := k.TBS()
	if err != nil {
		return err
	}
	sig, err := k.CipherSuite.SignWithLabel(key, KeyPackageTBSLabel, tbs, nil)
	if err != nil {
		return err
	}
	k.Signature = sig
	return nil
}

// VerifySignature checks the KeyPackage signature against the leaf's
// signature key (§10.1).
func (k *KeyPackage) VerifySignature() error {
	tbs, err := k.TBS()
	if err != nil {
		return err
	}
	return k.CipherSuite.VerifyWithLabel(k.LeafNode.SignatureKey, KeyPackageTBSLabel, tbs, k.Signature)
}

// Ref returns the KeyPackageRef of k (§5.2).
func (k *KeyPackage) Ref() ([]byte, error) {
	enc, err := codec.Marshal(k)
	if err != nil {
		return nil, err
	}
	return k.CipherSuite.KeyPackageRef(enc), nil
}
