package suite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/cloudflare/circl/sign/ed448"
	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
)

// SignaturePrivateKey is a private signing key of a cipher suite. It must
// stay secret; it prints as a redacted placeholder.
type SignaturePrivateKey struct {
	cs      CipherSuite
	raw     []byte // the encoding of FORMAT.md: EdDSA seed or ECDSA scalar
	pub     []byte // SignaturePublicKey encoding
	ed25519 ed25519.PrivateKey
	ed448   ed448.PrivateKey
	ecdsa   *ecdsa.PrivateKey
}

// String redacts the key.
func (k *SignaturePrivateKey) String() string { return "SignaturePrivateKey(redacted)" }

// GoString redacts the key.
func (k *SignaturePrivateKey) GoString() string { return k.String() }

// Format redacts the key whatever the verb.
func (k *SignaturePrivateKey) Format(f fmt.State, _ rune) { io.WriteString(f, k.String()) }

// Suite returns the cipher suite of the key.
func (k *SignaturePrivateKey) Suite() CipherSuite { return k.cs }

// PublicKey returns the SignaturePublicKey encoding of the public key: the
// 32- or 57-byte EdDSA key, or the uncompressed SEC1 point for ECDSA.
func (k *SignaturePrivateKey) PublicKey() []byte { return k.pub }

// Bytes returns the private key: the EdDSA seed, or the big-endian ECDSA
// scalar of the curve's field size.
func (k *SignaturePrivateKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Destroy overwrites the key material held by k. The key is unusable
// afterwards.
func (k *SignaturePrivateKey) Destroy() {
	clear(k.raw)
	clear(k.ed25519)
	clear(k.ed448)
	k.ecdsa = nil
}

// GenerateSignatureKey returns a new signing key. With a deterministic
// reader the key is deterministic.
func (cs CipherSuite) GenerateSignatureKey(r io.Reader) (*SignaturePrivateKey, error) {
	if err := cs.Check(); err != nil {
		return nil, err
	}
	if r == nil {
		r = rand.Reader
	}
	p := cs.p()
	switch p.sig {
	case schemeEd25519:
		seed := make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(r, seed); err != nil {
			return nil, fmt.Errorf("suite: reading randomness: %w", err)
		}
		return cs.ParseSignaturePrivateKey(seed)
	case schemeEd448:
		seed := make([]byte, ed448.SeedSize)
		if _, err := io.ReadFull(r, seed); err != nil {
			return nil, fmt.Errorf("suite: reading randomness: %w", err)
		}
		return cs.ParseSignaturePrivateKey(seed)
	default:
		size := (p.curve.Params().BitSize + 7) / 8
		mask := byte(0xff)
		if p.curve.Params().BitSize%8 != 0 {
			mask = byte(1<<(p.curve.Params().BitSize%8) - 1)
		}
		buf := make([]byte, size)
		for range 64 {
			if _, err := io.ReadFull(r, buf); err != nil {
				return nil, fmt.Errorf("suite: reading randomness: %w", err)
			}
			buf[0] &= mask
			if k, err := cs.ParseSignaturePrivateKey(buf); err == nil {
				return k, nil
			}
		}
		return nil, ErrInvalidPrivateKey
	}
}

// ParseSignaturePrivateKey decodes a private key in the encoding of
// Bytes.
func (cs CipherSuite) ParseSignaturePrivateKey(b []byte) (*SignaturePrivateKey, error) {
	if err := cs.Check(); err != nil {
		return nil, err
	}
	k := &SignaturePrivateKey{cs: cs, raw: append([]byte(nil), b...)}
	p := cs.p()
	switch p.sig {
	case schemeEd25519:
		if len(b) != ed25519.SeedSize {
			return nil, ErrInvalidPrivateKey
		}
		k.ed25519 = ed25519.NewKeyFromSeed(b)
		k.pub = append([]byte(nil), k.ed25519.Public().(ed25519.PublicKey)...)
	case schemeEd448:
		if len(b) != ed448.SeedSize {
			return nil, ErrInvalidPrivateKey
		}
		k.ed448 = ed448.NewKeyFromSeed(b)
		k.pub = append([]byte(nil), k.ed448.Public().(ed448.PublicKey)...)
	default:
		// Some encoders drop leading zero bytes of the scalar; restore them.
		size := (p.curve.Params().BitSize + 7) / 8
		if len(b) < size && len(b) > 0 {
			b = append(make([]byte, size-len(b)), b...)
			k.raw = b
		}
		priv, err := ecdsa.ParseRawPrivateKey(p.curve, b)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPrivateKey, err)
		}
		k.ecdsa = priv
		pub, err := priv.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidPrivateKey, err)
		}
		k.pub = pub
	}
	return k, nil
}

// ValidateSignaturePublicKey checks that pub is a well-formed signature
// public key of the suite.
func (cs CipherSuite) ValidateSignaturePublicKey(pub []byte) error {
	if err := cs.Check(); err != nil {
		return err
	}
	p := cs.p()
	switch p.sig {
	case schemeEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return ErrInvalidPublicKey
		}
	case schemeEd448:
		if len(pub) != ed448.PublicKeySize {
			return ErrInvalidPublicKey
		}
	default:
		if _, err := ecdsa.ParseUncompressedPublicKey(p.curve, pub); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidPublicKey, err)
		}
	}
	return nil
}

// signContent encodes SignContent (§5.1.2).
func signContent(label string, content []byte) []byte {
	b := cryptobyte.NewBuilder(make([]byte, 0, len(labelPrefix)+len(label)+len(content)+8))
	codec.AddVarint(b, uint64(len(labelPrefix)+len(label)))
	b.AddBytes([]byte(labelPrefix))
	b.AddBytes([]byte(label))
	codec.AddOpaque(b, content)
	return b.BytesOrPanic()
}

// SignWithLabel signs content under label (§5.1.2). The label is given
// without the "MLS 1.0 " prefix.
func (cs CipherSuite) SignWithLabel(k *SignaturePrivateKey, label string, content []byte, r io.Reader) ([]byte, error) {
	if k.cs != cs {
		return nil, fmt.Errorf("%w: key of suite %v used with %v", ErrInvalidPrivateKey, k.cs, cs)
	}
	msg := signContent(label, content)
	p := cs.p()
	switch p.sig {
	case schemeEd25519:
		return ed25519.Sign(k.ed25519, msg), nil
	case schemeEd448:
		return ed448.Sign(k.ed448, msg, ""), nil
	default:
		if r == nil {
			r = rand.Reader
		}
		h := p.hash.New()
		h.Write(msg)
		return ecdsa.SignASN1(r, k.ecdsa, h.Sum(nil))
	}
}

// VerifyWithLabel verifies a signature made by SignWithLabel (§5.1.2).
func (cs CipherSuite) VerifyWithLabel(pub []byte, label string, content, sig []byte) error {
	return cs.verifyWithLabel(pub, label, content, sig, false)
}

// VerifyWithLabelRepeated is VerifyWithLabel for signatures by keys that
// sign again and again, such as members' messages: an Ed25519 key verified
// often is verified through a table made for it, nearly three times as fast
// (keyCache). It accepts and rejects exactly what VerifyWithLabel does.
func (cs CipherSuite) VerifyWithLabelRepeated(pub []byte, label string, content, sig []byte) error {
	return cs.verifyWithLabel(pub, label, content, sig, true)
}

func (cs CipherSuite) verifyWithLabel(pub []byte, label string, content, sig []byte, repeated bool) error {
	if err := cs.Check(); err != nil {
		return err
	}
	msg := signContent(label, content)
	p := cs.p()
	var ok bool
	switch p.sig {
	case schemeEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return ErrInvalidPublicKey
		}
		if repeated {
			ok = ed25519Keys.verify(pub, msg, sig)
		} else {
			ok = ed25519.Verify(pub, msg, sig)
		}
	case schemeEd448:
		if len(pub) != ed448.PublicKeySize {
			return ErrInvalidPublicKey
		}
		ok = ed448.Verify(pub, msg, sig, "")
	default:
		key, err := ecdsa.ParseUncompressedPublicKey(p.curve, pub)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidPublicKey, err)
		}
		h := p.hash.New()
		h.Write(msg)
		ok = ecdsa.VerifyASN1(key, h.Sum(nil), sig)
	}
	if !ok {
		return ErrInvalidSignature
	}
	return nil
}
