package group

import (
	"bytes"
	"io"
	"time"

	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/ratchettree"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/wire"
)

// PSKStore supplies pre-shared keys the group does not hold itself.
type PSKStore interface {
	// ExternalPSK returns the external PSK with the given id.
	ExternalPSK(id []byte) ([]byte, bool)
	// ResumptionPSK returns the resumption_psk of another group's epoch
	// (a state answers for its own group from its history first).
	ResumptionPSK(groupID []byte, epoch uint64) ([]byte, bool)
}

// Config is a member's policy. The zero value is usable: it accepts every
// credential, checks KeyPackage lifetimes against the clock, pads
// PrivateMessages to 32 bytes and keeps 16 resumption PSKs.
type Config struct {
	// SecretTree bounds out-of-order and skipped-generation messages.
	SecretTree secrettree.Config
	// Padding pads PrivateMessage content; nil means PadTo(32).
	Padding framing.PaddingFunc
	// ValidateCredential is the application's check of credentials (the
	// Authentication Service); nil accepts every credential.
	ValidateCredential ratchettree.CredentialValidator
	// SameClient reports whether the credential next stands for the same
	// client as the credential old, as the application sees it. An
	// external commit may remove a leaf only to replace the joiner's own
	// old appearance (a resync, §12.2 and §12.4.3.2): its Remove is
	// accepted only if SameClient(removed leaf's credential, joiner's new
	// credential). nil means the default: credentials of the same type
	// with byte-equal identities (basic) or byte-equal first, leaf
	// certificates (X.509).
	SameClient func(old, next *wire.Credential) bool
	// Now is the clock for lifetimes; nil means time.Now.
	Now func() time.Time
	// SkipLifetimeCheck turns off the lifetime check of KeyPackages.
	SkipLifetimeCheck bool
	// MaxLifetime, when not zero, rejects KeyPackages with a longer
	// lifetime.
	MaxLifetime time.Duration
	// PSKs supplies external PSKs and other groups' resumption PSKs.
	PSKs PSKStore
	// ResumptionHistory is how many past epochs' resumption PSKs a state
	// keeps (0 means 16).
	ResumptionHistory int
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
	// Grease makes the GroupInfos this member signs and the leaf of its
	// external commits carry random GREASE values, drawn from Rand, in
	// the fields where receivers must ignore unknown values (§13.5; see
	// grease.go for what goes where). KeyPackages take theirs from
	// KeyPackageOptions.Grease. Off by default, so that the official test
	// vectors reproduce.
	Grease bool
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Config) sameClient(old, next *wire.Credential) bool {
	if c.SameClient != nil {
		return c.SameClient(old, next)
	}
	return defaultSameClient(old, next)
}

// defaultSameClient is the SameClient of a Config that sets none.
func defaultSameClient(old, next *wire.Credential) bool {
	if old.Type != next.Type {
		return false
	}
	switch old.Type {
	case wire.CredentialBasic:
		return bytes.Equal(old.Identity, next.Identity)
	case wire.CredentialX509:
		return len(old.Certificates) > 0 && len(next.Certificates) > 0 &&
			bytes.Equal(old.Certificates[0], next.Certificates[0])
	}
	return false
}

func (c *Config) lifetimeNow() time.Time {
	if c.SkipLifetimeCheck {
		return time.Time{}
	}
	return c.now()
}

func (c *Config) padding() framing.PaddingFunc {
	if c.Padding != nil {
		return c.Padding
	}
	return framing.PadTo(32)
}

func (c *Config) secretTree() secrettree.Config {
	if c.SecretTree == (secrettree.Config{}) {
		return secrettree.DefaultConfig
	}
	return c.SecretTree
}

func (c *Config) resumptionHistory() int {
	if c.ResumptionHistory <= 0 {
		return 16
	}
	return c.ResumptionHistory
}
