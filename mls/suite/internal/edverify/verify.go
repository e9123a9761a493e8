package edverify

import (
	"crypto/sha512"
	"errors"
	"sync"

	"filippo.io/edwards25519"
)

// PublicKeySize and SignatureSize are those of Ed25519.
const (
	PublicKeySize = 32
	SignatureSize = 64
)

// ErrInvalidPublicKey is returned for a public key that is not an encoded
// point of edwards25519.
var ErrInvalidPublicKey = errors.New("edverify: invalid Ed25519 public key")

// table holds [j·256^i]P for i < 32 and j = 1..8, at 8i + j - 1: with the signed radix-16
// digits e of a scalar s (s = Σ e_k·16^k, -8 <= e_k <= 8),
// [s]P = 16·Σ e_{2i+1}·table[i] + Σ e_{2i}·table[i]: 128 mixed additions
// and 4 doublings for two scalars at once. It takes 30 KB.
type table [32 * 8]affine

func newTable(p *edwards25519.Point) *table {
	x, y, z, t := p.ExtendedCoordinates()
	var base point
	base.x.Set(x)
	base.y.Set(y)
	base.z.Set(z)
	base.t.Set(t)
	ps := make([]point, 32*8)
	for i := range 32 {
		row := ps[i*8 : i*8+8]
		row[0] = base
		for j := 1; j < 8; j++ {
			row[j].add(&row[j-1], &base)
		}
		if i < 31 {
			for range 8 {
				base.double(&base)
			}
		}
	}
	tab := new(table)
	toAffine(tab[:], ps)
	return tab
}

// baseTable is the table of the generator B.
var baseTable = sync.OnceValue(func() *table {
	return newTable(edwards25519.NewGeneratorPoint())
})

// Key is an Ed25519 public key prepared for repeated verification. It is
// immutable and safe for concurrent use.
type Key struct {
	enc [PublicKeySize]byte
	neg *table // multiples of -A
}

// NewKey decodes pub as crypto/ed25519 does (non-canonical encodings of y
// are accepted, as there) and computes its table, which costs about as
// much as two verifications.
func NewKey(pub []byte) (*Key, error) {
	if len(pub) != PublicKeySize {
		return nil, ErrInvalidPublicKey
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, ErrInvalidPublicKey
	}
	k := &Key{neg: newTable(a.Negate(a))}
	copy(k.enc[:], pub)
	return k, nil
}

// Bytes returns the key's encoding.
func (k *Key) Bytes() [PublicKeySize]byte { return k.enc }

// Verify reports whether sig is a valid Ed25519 signature of msg by k,
// with the checks of crypto/ed25519.Verify (RFC 8032 §5.1.7, without the
// cofactor).
func (k *Key) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(sig[32:]) // S < l
	if err != nil {
		return false
	}
	h := sha512.New()
	h.Write(sig[:32])
	h.Write(k.enc[:])
	h.Write(msg)
	var digest [sha512.Size]byte
	c, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(digest[:0]))
	if err != nil {
		panic("edverify: SetUniformBytes of a SHA-512 digest failed")
	}
	// R' = [S]B + [c](-A) must encode to R.
	var r point
	doubleMult(&r, baseTable(), s, k.neg, c)
	var enc [32]byte
	r.bytes(&enc)
	return enc == [32]byte(sig[:32])
}

// doubleMult sets p = [s]T + [c]U for the points whose tables T and U are.
func doubleMult(p *point, t *table, s *edwards25519.Scalar, u *table, c *edwards25519.Scalar) {
	var es, ec [64]int8
	signedRadix16(&es, s.Bytes())
	signedRadix16(&ec, c.Bytes())
	p.setIdentity()
	for i := range 32 {
		addDigit(p, t[i*8:i*8+8], es[2*i+1])
		addDigit(p, u[i*8:i*8+8], ec[2*i+1])
	}
	for range 4 {
		p.double(p)
	}
	for i := range 32 {
		addDigit(p, t[i*8:i*8+8], es[2*i])
		addDigit(p, u[i*8:i*8+8], ec[2*i])
	}
}

func addDigit(p *point, row []affine, e int8) {
	switch {
	case e > 0:
		p.addAffine(p, &row[e-1], false)
	case e < 0:
		p.addAffine(p, &row[-e-1], true)
	}
}

// signedRadix16 writes a reduced scalar (little-endian, below 2^253) as 64
// digits e_k in [-8, 8) but the last, in [-8, 8], with s = Σ e_k·16^k.
func signedRadix16(e *[64]int8, s []byte) {
	for i, b := range s[:32] {
		e[2*i] = int8(b & 15)
		e[2*i+1] = int8(b >> 4)
	}
	for i := range 63 {
		carry := (e[i] + 8) >> 4
		e[i] -= carry << 4
		e[i+1] += carry
	}
}
