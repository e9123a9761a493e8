package group

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// ExtensionLastResort marks a KeyPackage that may be used more than once
// (the last_resort extension of the MLS extensions document, §16.8 of RFC
// 9420 on KeyPackage reuse).
const ExtensionLastResort wire.ExtensionType = 0x000a

// KeyPackageBundle is a KeyPackage with its private keys. InitKey must be
// deleted (Destroy) once a Welcome has used it, unless the KeyPackage is a
// last-resort one.
type KeyPackageBundle struct {
	KeyPackage    *wire.KeyPackage
	InitKey       *suite.HPKEPrivateKey
	EncryptionKey *suite.HPKEPrivateKey
	Signer        *suite.SignaturePrivateKey
}

// Ref returns the KeyPackageRef of the bundle's KeyPackage.
func (b *KeyPackageBundle) Ref() []byte {
	ref, err := b.KeyPackage.Ref()
	if err != nil {
		panic("group: KeyPackage does not encode: " + err.Error()) // built by NewKeyPackage
	}
	return ref
}

// LastResort reports whether the KeyPackage may be reused.
func (b *KeyPackageBundle) LastResort() bool { return b.KeyPackage.Extensions.Has(ExtensionLastResort) }

// DestroyInitKey overwrites the init private key after use (§10).
func (b *KeyPackageBundle) DestroyInitKey() {
	if b.InitKey != nil {
		b.InitKey.Destroy()
		b.InitKey = nil
	}
}

// KeyPackageOptions shape a new KeyPackage.
type KeyPackageOptions struct {
	Credential wire.Credential
	// Capabilities defaults to DefaultCapabilities(cs).
	Capabilities *wire.Capabilities
	// Lifetime defaults to [now-1h, now+90 days].
	Lifetime       *wire.Lifetime
	LeafExtensions wire.Extensions
	Extensions     wire.Extensions
	// LastResort adds the last_resort extension.
	LastResort bool
	// Grease adds random GREASE values to the capabilities, the leaf's
	// extensions and the KeyPackage's extensions (§13.5; see grease.go
	// for what goes where), drawn from Rand.
	Grease bool
	Rand   io.Reader
	Now    time.Time
}

// DefaultCapabilities lists what this implementation supports: MLS 1.0,
// every cipher suite, basic and X.509 credentials, the last_resort
// extension and the self_remove proposal.
func DefaultCapabilities() wire.Capabilities {
	return wire.Capabilities{
		Versions:     []wire.ProtocolVersion{wire.MLS10},
		CipherSuites: append([]suite.CipherSuite(nil), suite.All...),
		Extensions:   []wire.ExtensionType{ExtensionLastResort},
		Proposals:    []wire.ProposalType{wire.ProposalSelfRemove},
		Credentials:  []wire.CredentialType{wire.CredentialBasic, wire.CredentialX509},
	}
}

// NewKeyPackage creates a signed KeyPackage with fresh init and
// encryption keys (§10).
func NewKeyPackage(cs suite.CipherSuite, signer *suite.SignaturePrivateKey, opts KeyPackageOptions) (*KeyPackageBundle, error) {
	if err := cs.Check(); err != nil {
		return nil, err
	}
	if signer.Suite() != cs {
		return nil, fmt.Errorf("%w: signer of suite %v", ErrInvalidKeyPackage, signer.Suite())
	}
	initKey, err := cs.GenerateHPKEKey(opts.Rand)
	if err != nil {
		return nil, err
	}
	encKey, err := cs.GenerateHPKEKey(opts.Rand)
	if err != nil {
		return nil, err
	}
	caps := DefaultCapabilities()
	if opts.Capabilities != nil {
		caps = *opts.Capabilities
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	lt := wire.Lifetime{NotBefore: uint64(now.Add(-time.Hour).Unix()), NotAfter: uint64(now.Add(90 * 24 * time.Hour).Unix())}
	if opts.Lifetime != nil {
		lt = *opts.Lifetime
	}
	exts := append(wire.Extensions(nil), opts.Extensions...)
	if opts.LastResort && !exts.Has(ExtensionLastResort) {
		exts = append(exts, wire.Extension{Type: ExtensionLastResort})
	}
	kp := &wire.KeyPackage{
		Version:     wire.MLS10,
		CipherSuite: cs,
		InitKey:     initKey.PublicKey(),
		LeafNode: wire.LeafNode{
			EncryptionKey: encKey.PublicKey(),
			SignatureKey:  signer.PublicKey(),
			Credential:    opts.Credential,
			Capabilities:  caps,
			Source:        wire.LeafNodeSourceKeyPackage,
			Lifetime:      lt,
			Extensions:    opts.LeafExtensions,
		},
		Extensions: exts,
	}
	if opts.Grease {
		g := &greaser{r: opts.Rand}
		if g.r == nil {
			g.r = rand.Reader
		}
		types := g.leaf(&kp.LeafNode)
		kp.Extensions = g.extension(kp.Extensions, wire.ExtensionType(types[len(types)-1]), g.data())
		if err := g.failed(); err != nil {
			return nil, err
		}
	}
	if err := kp.LeafNode.Sign(cs, signer, nil, 0); err != nil {
		return nil, err
	}
	if err := kp.Sign(signer); err != nil {
		return nil, err
	}
	return &KeyPackageBundle{KeyPackage: kp, InitKey: initKey, EncryptionKey: encKey, Signer: signer}, nil
}

// knownKeyPackageExtension reports whether t is a KeyPackage extension this
// implementation understands: last_resort. (The default extensions of §7.2
// need no listing in capabilities, and belong to other objects anyway.)
func knownKeyPackageExtension(t wire.ExtensionType) bool { return t == ExtensionLastResort }

// ValidateKeyPackage checks a KeyPackage on its own (§10.1): its suite
// and version, its leaf (source key_package, signature, lifetime against
// now unless now is zero), its signature, and that its init and
// encryption keys differ. Checks against a group's members happen when it
// is added.
func ValidateKeyPackage(kp *wire.KeyPackage, cs suite.CipherSuite, now time.Time, validate ratchettree.CredentialValidator) error {
	if kp.CipherSuite != cs {
		return fmt.Errorf("%w: cipher suite %v, group uses %v", ErrInvalidKeyPackage, kp.CipherSuite, cs)
	}
	if kp.Version != wire.MLS10 {
		return fmt.Errorf("%w: version %d", ErrInvalidKeyPackage, kp.Version)
	}
	if err := cs.ValidateHPKEPublicKey(kp.InitKey); err != nil {
		return fmt.Errorf("%w: init key: %w", ErrInvalidKeyPackage, err)
	}
	if bytes.Equal(kp.InitKey, kp.LeafNode.EncryptionKey) {
		return fmt.Errorf("%w: init key equals the leaf's encryption key", ErrInvalidKeyPackage)
	}
	// Extensions of the KeyPackage must be listed in the leaf's
	// capabilities, but unknown ones (GREASE values among them) are
	// ignored (§10, §13.5): only those this implementation understands
	// are held to the rule.
	for _, x := range kp.Extensions {
		if knownKeyPackageExtension(x.Type) && !kp.LeafNode.Capabilities.HasExtension(x.Type) {
			return fmt.Errorf("%w: extension %d not in capabilities", ErrInvalidKeyPackage, x.Type)
		}
	}
	if err := kp.VerifySignature(); err != nil {
		return fmt.Errorf("%w: signature: %w", ErrInvalidKeyPackage, err)
	}
	alone := ratchettree.New(cs)
	if err := alone.ValidateLeaf(&kp.LeafNode, ratchettree.LeafCheck{
		Source:             wire.LeafNodeSourceKeyPackage,
		Now:                now,
		ValidateCredential: validate,
		SkipUniqueness:     true,
		SkipSupport:        true,
	}); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return nil
}
