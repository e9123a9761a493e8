// Package keyschedule implements the MLS key schedule (RFC 9420, §8): the
// derivation of an epoch's secrets from the previous init_secret, the
// commit_secret and the PSKs, the PSK secret (§8.4), the exporter (§8.5)
// and the Welcome keys (§12.4.3.1).
//
// Every secret here must stay secret. Epoch.Destroy overwrites them when the
// epoch is spent.
package keyschedule

import (
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// Epoch holds the secrets of one epoch (§8, Table 4).
type Epoch struct {
	Suite suite.CipherSuite

	JoinerSecret       []byte
	WelcomeSecret      []byte
	SenderDataSecret   []byte
	EncryptionSecret   []byte
	ExporterSecret     []byte
	ExternalSecret     []byte
	ConfirmationKey    []byte
	MembershipKey      []byte
	ResumptionPSK      []byte
	EpochAuthenticator []byte
	InitSecret         []byte // init_secret of the next epoch
}

// String redacts the secrets.
func (e *Epoch) String() string { return "keyschedule.Epoch(redacted)" }

// GoString redacts the secrets.
func (e *Epoch) GoString() string { return e.String() }

// Zero returns Nh zero bytes: the commit_secret of a commit without a path
// and the psk_secret of a commit without PSKs.
func Zero(cs suite.CipherSuite) []byte { return make([]byte, cs.Nh()) }

// JoinerSecret derives joiner_secret from the previous epoch's init_secret,
// the commit_secret and the new epoch's encoded GroupContext.
func JoinerSecret(cs suite.CipherSuite, initSecret, commitSecret, groupContext []byte) []byte {
	prk := cs.Extract(initSecret, commitSecret)
	defer clear(prk)
	out, err := cs.ExpandWithLabel(prk, "joiner", groupContext, uint16(cs.Nh()))
	if err != nil {
		panic("keyschedule: " + err.Error()) // Nh is always in range
	}
	return out
}

// FromJoiner derives the epoch's secrets from joiner_secret, psk_secret
// (Zero for none) and the encoded GroupContext.
func FromJoiner(cs suite.CipherSuite, joinerSecret, pskSecret, groupContext []byte) *Epoch {
	member := cs.Extract(joinerSecret, pskSecret)
	defer clear(member)
	epochSecret, err := cs.ExpandWithLabel(member, "epoch", groupContext, uint16(cs.Nh()))
	if err != nil {
		panic("keyschedule: " + err.Error())
	}
	defer clear(epochSecret)
	e := FromEpochSecret(cs, epochSecret)
	e.JoinerSecret = append([]byte(nil), joinerSecret...)
	e.WelcomeSecret = cs.DeriveSecret(member, "welcome")
	return e
}

// FromEpochSecret derives the epoch's secrets from epoch_secret itself, as
// the creator of a group does for epoch 0 (§11). JoinerSecret and
// WelcomeSecret are left empty.
func FromEpochSecret(cs suite.CipherSuite, epochSecret []byte) *Epoch {
	return &Epoch{
		Suite:              cs,
		SenderDataSecret:   cs.DeriveSecret(epochSecret, "sender data"),
		EncryptionSecret:   cs.DeriveSecret(epochSecret, "encryption"),
		ExporterSecret:     cs.DeriveSecret(epochSecret, "exporter"),
		ExternalSecret:     cs.DeriveSecret(epochSecret, "external"),
		ConfirmationKey:    cs.DeriveSecret(epochSecret, "confirm"),
		MembershipKey:      cs.DeriveSecret(epochSecret, "membership"),
		ResumptionPSK:      cs.DeriveSecret(epochSecret, "resumption"),
		EpochAuthenticator: cs.DeriveSecret(epochSecret, "authentication"),
		InitSecret:         cs.DeriveSecret(epochSecret, "init"),
	}
}

// New runs the whole schedule for one epoch.
func New(cs suite.CipherSuite, initSecret, commitSecret, pskSecret, groupContext []byte) *Epoch {
	joiner := JoinerSecret(cs, initSecret, commitSecret, groupContext)
	defer clear(joiner)
	return FromJoiner(cs, joiner, pskSecret, groupContext)
}

// Destroy overwrites every secret of the epoch.
func (e *Epoch) Destroy() {
	for _, s := range [][]byte{
		e.JoinerSecret, e.WelcomeSecret, e.SenderDataSecret, e.EncryptionSecret,
		e.ExporterSecret, e.ExternalSecret, e.ConfirmationKey, e.MembershipKey,
		e.ResumptionPSK, e.EpochAuthenticator, e.InitSecret,
	} {
		clear(s)
	}
}

// ForgetJoinerSecrets overwrites the secrets needed only to make a Welcome
// (joiner_secret and welcome_secret), once the Welcome is made or not
// needed.
func (e *Epoch) ForgetJoinerSecrets() {
	clear(e.JoinerSecret)
	clear(e.WelcomeSecret)
	e.JoinerSecret, e.WelcomeSecret = nil, nil
}

// Export is MLS-Exporter(label, context, length) (§8.5).
func Export(cs suite.CipherSuite, exporterSecret []byte, label string, context []byte, length uint16) ([]byte, error) {
	derived := cs.DeriveSecret(exporterSecret, label)
	defer clear(derived)
	return cs.ExpandWithLabel(derived, "exported", cs.Hash(context), length)
}

// Export is MLS-Exporter(label, context, length) of this epoch.
func (e *Epoch) Export(label string, context []byte, length uint16) ([]byte, error) {
	return Export(e.Suite, e.ExporterSecret, label, context, length)
}

// ExternalKey returns the epoch's external key pair, whose public half is
// the GroupInfo's external_pub (§8.3).
func (e *Epoch) ExternalKey() (*suite.HPKEPrivateKey, error) {
	return e.Suite.DeriveKeyPair(e.ExternalSecret)
}

// WelcomeKeyNonce derives the AEAD key and nonce that encrypt a Welcome's
// GroupInfo (§12.4.3.1).
func WelcomeKeyNonce(cs suite.CipherSuite, welcomeSecret []byte) (key, nonce []byte, err error) {
	key, err = cs.ExpandWithLabel(welcomeSecret, "key", nil, uint16(cs.Nk()))
	if err != nil {
		return nil, nil, err
	}
	nonce, err = cs.ExpandWithLabel(welcomeSecret, "nonce", nil, uint16(cs.Nn()))
	if err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// WelcomeSecret derives welcome_secret from joiner_secret and psk_secret,
// as a new member does before it knows the epoch's GroupContext.
func WelcomeSecret(cs suite.CipherSuite, joinerSecret, pskSecret []byte) []byte {
	member := cs.Extract(joinerSecret, pskSecret)
	defer clear(member)
	return cs.DeriveSecret(member, "welcome")
}

// PSK is one pre-shared key with its identifier, as input to PSKSecret.
type PSK struct {
	ID     wire.PreSharedKeyID
	Secret []byte
}

// PSKSecret computes psk_secret from the PSKs in the order of the Commit
// or GroupSecrets (§8.4). With no PSKs it is Zero.
func PSKSecret(cs suite.CipherSuite, psks []PSK) ([]byte, error) {
	secret := Zero(cs)
	zero := Zero(cs)
	for i := range psks {
		extracted := cs.Extract(zero, psks[i].Secret)
		var b cryptobyte.Builder
		psks[i].ID.MarshalMLS(&b)
		b.AddUint16(uint16(i))
		b.AddUint16(uint16(len(psks)))
		label, err := b.Bytes()
		if err != nil {
			return nil, err
		}
		input, err := cs.ExpandWithLabel(extracted, "derived psk", label, uint16(cs.Nh()))
		clear(extracted)
		if err != nil {
			return nil, err
		}
		next := cs.Extract(input, secret)
		clear(input)
		clear(secret)
		secret = next
	}
	return secret, nil
}
