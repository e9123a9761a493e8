package suite

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// HPKEPrivateKey is an HPKE private key of a cipher suite's KEM. It must stay
// secret; it prints as a redacted placeholder.
type HPKEPrivateKey struct {
	cs  CipherSuite
	sk  kem.PrivateKey
	raw []byte // SerializePrivateKey
	pub []byte // SerializePublicKey
}

// String redacts the key.
func (k *HPKEPrivateKey) String() string { return "HPKEPrivateKey(redacted)" }

// GoString redacts the key.
func (k *HPKEPrivateKey) GoString() string { return k.String() }

// Format redacts the key whatever the verb.
func (k *HPKEPrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// PublicKey returns the serialized public key (HPKEPublicKey).
func (k *HPKEPrivateKey) PublicKey() []byte { return k.pub }

// Bytes returns the serialized private key (HPKE SerializePrivateKey).
func (k *HPKEPrivateKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Destroy overwrites the key material held by k. The key is unusable
// afterwards.
func (k *HPKEPrivateKey) Destroy() {
	clear(k.raw)
	k.sk = nil
}

// nsk is the size of a serialized KEM private key.
func (p *params) nsk() int { return p.kem.Scheme().PrivateKeySize() }

// ParseHPKEPrivateKey decodes a serialized HPKE private key and computes
// its public key.
func (cs CipherSuite) ParseHPKEPrivateKey(b []byte) (*HPKEPrivateKey, error) {
	if err := cs.Check(); err != nil {
		return nil, err
	}
	p := cs.p()
	if p.curve != nil && len(b) < p.nsk() && len(b) > 0 {
		// Some encoders drop leading zero bytes of the scalar; restore them.
		b = append(make([]byte, p.nsk()-len(b)), b...)
	}
	if len(b) != p.nsk() {
		return nil, ErrInvalidPrivateKey
	}
	if p.curve != nil {
		if err := checkScalar(p, b); err != nil {
			return nil, err
		}
	}
	sk, err := p.kem.Scheme().UnmarshalBinaryPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPrivateKey, err)
	}
	pub, err := sk.Public().MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidPrivateKey, err)
	}
	return &HPKEPrivateKey{cs: cs, sk: sk, raw: append([]byte(nil), b...), pub: pub}, nil
}

// checkScalar reports whether b is a valid NIST-curve scalar (0 < b < n).
func checkScalar(p *params, b []byte) error {
	var c ecdh.Curve
	switch p.curve.Params().BitSize {
	case 256:
		c = ecdh.P256()
	case 384:
		c = ecdh.P384()
	case 521:
		c = ecdh.P521()
	}
	if _, err := c.NewPrivateKey(b); err != nil {
		return ErrInvalidPrivateKey
	}
	return nil
}

// ValidateHPKEPublicKey checks that pub is a well-formed public key of the
// suite's KEM.
func (cs CipherSuite) ValidateHPKEPublicKey(pub []byte) error {
	if err := cs.Check(); err != nil {
		return err
	}
	if cs.p().kem == hpke.KEM_XWING {
		return validateXWingPublicKey(pub)
	}
	if _, err := cs.p().kem.Scheme().UnmarshalBinaryPublicKey(pub); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidPublicKey, err)
	}
	return nil
}

// DeriveKeyPair is the KEM's DeriveKeyPair(ikm) (RFC 9180, §7.1.3; for
// X-Wing, SHAKE256 of ikm as its draft defines it). MLS derives node and
// external keys this way; ikm may have any length.
func (cs CipherSuite) DeriveKeyPair(ikm []byte) (*HPKEPrivateKey, error) {
	if err := cs.Check(); err != nil {
		return nil, err
	}
	p := cs.p()
	if p.kem == hpke.KEM_XWING {
		seed := deriveXWingSeed(ikm, p.nsk())
		defer clear(seed)
		return cs.ParseHPKEPrivateKey(seed)
	}
	var suiteID [5]byte
	copy(suiteID[:], "KEM")
	binary.BigEndian.PutUint16(suiteID[3:], uint16(p.kem))
	nsk := p.nsk()

	labeled := func(parts ...[]byte) []byte {
		var out []byte
		for _, x := range parts {
			out = append(out, x...)
		}
		return out
	}
	extract := func(salt []byte, label string, ikm []byte) []byte {
		return hkdfExtract(p.kemHash.New, salt, labeled([]byte("HPKE-v1"), suiteID[:], []byte(label), ikm))
	}
	expand := func(prk []byte, label string, info []byte, l int) []byte {
		var lb [2]byte
		binary.BigEndian.PutUint16(lb[:], uint16(l))
		return hkdfExpand(p.kemHash.New, prk, labeled(lb[:], []byte("HPKE-v1"), suiteID[:], []byte(label), info), l)
	}

	dkpPRK := extract(nil, "dkp_prk", ikm)
	defer clear(dkpPRK)
	if p.curve == nil {
		sk := expand(dkpPRK, "sk", nil, nsk)
		defer clear(sk)
		return cs.ParseHPKEPrivateKey(sk)
	}
	mask := byte(0xff)
	if p.curve.Params().BitSize == 521 {
		mask = 0x01
	}
	for counter := 0; counter < 256; counter++ {
		cand := expand(dkpPRK, "candidate", []byte{byte(counter)}, nsk)
		cand[0] &= mask
		if checkScalar(p, cand) == nil {
			k, err := cs.ParseHPKEPrivateKey(cand)
			clear(cand)
			return k, err
		}
		clear(cand)
	}
	return nil, ErrDeriveKeyPair
}

// EncryptSeedSize is the number of random bytes EncryptWithLabel reads
// from its reader (the seed of the KEM's ephemeral key).
func (cs CipherSuite) EncryptSeedSize() int {
	return cs.p().kem.Scheme().EncapsulationSeedSize()
}

// GenerateHPKEKey returns a new HPKE key pair: DeriveKeyPair of Nsk random
// bytes, so a deterministic reader gives a deterministic key.
func (cs CipherSuite) GenerateHPKEKey(r io.Reader) (*HPKEPrivateKey, error) {
	if err := cs.Check(); err != nil {
		return nil, err
	}
	if r == nil {
		r = rand.Reader
	}
	ikm := make([]byte, cs.p().nsk())
	defer clear(ikm)
	if _, err := io.ReadFull(r, ikm); err != nil {
		return nil, fmt.Errorf("suite: reading randomness: %w", err)
	}
	return cs.DeriveKeyPair(ikm)
}

// encryptContext encodes EncryptContext (§5.1.3).
func encryptContext(label string, context []byte) []byte {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(labelPrefix)+len(label)+len(context)+8))
	codec.AddVarint(b, uint64(len(labelPrefix)+len(label)))
	b.AddBytes([]byte(labelPrefix))
	b.AddBytes([]byte(label))
	codec.AddOpaque(b, context)
	return b.BytesOrPanic()
}

// EncryptWithLabel is EncryptWithLabel(pub, label, context, plaintext)
// (§5.1.3): HPKE SealBase with EncryptContext as info and empty aad.
func (cs CipherSuite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte, r io.Reader) (kemOutput, ciphertext []byte, err error) {
	if err := cs.Check(); err != nil {
		return nil, nil, err
	}
	p := cs.p()
	pk, err := p.kem.Scheme().UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidPublicKey, err)
	}
	sender, err := p.hpke.NewSender(pk, encryptContext(label, context))
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE setup: %w", err)
	}
	enc, sealer, err := sender.Setup(r)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE setup: %w", err)
	}
	ct, err := sealer.Seal(plaintext, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE seal: %w", err)
	}
	return enc, ct, nil
}

// DecryptWithLabel is DecryptWithLabel(priv, label, context, kem_output,
// ciphertext) (§5.1.3).
func (cs CipherSuite) DecryptWithLabel(k *HPKEPrivateKey, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	if k == nil || k.sk == nil || k.cs != cs {
		return nil, ErrInvalidPrivateKey
	}
	p := cs.p()
	receiver, err := p.hpke.NewReceiver(k.sk, encryptContext(label, context))
	if err != nil {
		return nil, fmt.Errorf("suite: HPKE setup: %w", err)
	}
	opener, err := receiver.Setup(kemOutput)
	if err != nil {
		return nil, ErrDecryption
	}
	pt, err := opener.Open(ciphertext, nil)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}

// externalInitLabel is the exporter label of external initialization (§8.3).
const externalInitLabel = "MLS 1.0 external init secret"

// ExternalInit is the joiner's side of external initialization (§8.3): it
// encapsulates to the group's external_pub and exports the init_secret.
func (cs CipherSuite) ExternalInit(externalPub []byte, r io.Reader) (kemOutput, initSecret []byte, err error) {
	if err := cs.Check(); err != nil {
		return nil, nil, err
	}
	p := cs.p()
	pk, err := p.kem.Scheme().UnmarshalBinaryPublicKey(externalPub)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrInvalidPublicKey, err)
	}
	sender, err := p.hpke.NewSender(pk, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE setup: %w", err)
	}
	enc, sealer, err := sender.Setup(r)
	if err != nil {
		return nil, nil, fmt.Errorf("suite: HPKE setup: %w", err)
	}
	return enc, sealer.Export([]byte(externalInitLabel), uint(cs.Nh())), nil
}

// ExternalInitSecret is the group's side of external initialization: it
// decapsulates kemOutput with the external private key and exports the
// init_secret.
func (cs CipherSuite) ExternalInitSecret(k *HPKEPrivateKey, kemOutput []byte) ([]byte, error) {
	if k == nil || k.sk == nil || k.cs != cs {
		return nil, ErrInvalidPrivateKey
	}
	receiver, err := cs.p().hpke.NewReceiver(k.sk, nil)
	if err != nil {
		return nil, fmt.Errorf("suite: HPKE setup: %w", err)
	}
	opener, err := receiver.Setup(kemOutput)
	if err != nil {
		return nil, ErrDecryption
	}
	return opener.Export([]byte(externalInitLabel), uint(cs.Nh())), nil
}
