package edverify

import (
	"crypto/sha512"
	"sync"

	"filippo.io/edwards25519"
)

// PublicKeySize and SignatureSize are those of Ed25519.
const (
	PublicKeySize = 32
	SignatureSize = 64
)

// table holds [j·256^i]P for 32 rows i and j = 1..per, row i at
// pts[per·i:]. A key's table has per = 8, for a scalar written in signed
// radix-16 digits e (s = Σ e_k·16^k, -8 <= e_k <= 8):
// [s]P = 16·Σ e_{2i+1}·row[i] + Σ e_{2i}·row[i], 64 mixed additions and 4
// doublings, 30 KB. The generator's has per = 128, for signed radix-256
// digits (-128 <= e_k <= 128): [s]B = Σ e_i·row[i], 32 additions, 480 KB
// made once per process.
type table struct {
	per int
	pts []affine
}

func newTable(p *edwards25519.Point, per int) *table {
	var base point
	base.fromEdwards(p)
	ps := make([]point, 32*per)
	for i := range 32 {
		row := ps[i*per : (i+1)*per]
		row[0] = base
		for j := 1; j < per; j++ {
			row[j].add(&row[j-1], &base)
		}
		if i < 31 {
			for range 8 {
				base.double(&base)
			}
		}
	}
	tab := &table{per: per, pts: make([]affine, len(ps))}
	toAffine(tab.pts, ps)
	return tab
}

func (t *table) row(i int) []affine { return t.pts[i*t.per : (i+1)*t.per] }

// baseTable is the table of the generator B.
var baseTable = sync.OnceValue(func() *table {
	return newTable(edwards25519.NewGeneratorPoint(), 128)
})

// Key is an Ed25519 public key prepared for repeated verification. It is
// immutable and safe for concurrent use.
type Key struct {
	enc [PublicKeySize]byte
	neg *table // multiples of -A
}

// NewKey decodes pub as crypto/ed25519 does (non-canonical encodings of y
// are accepted, as there) and computes its table, which costs about as
// much as two verifications by crypto/ed25519 (240 us here).
func NewKey(pub []byte) (*Key, error) {
	if len(pub) != PublicKeySize {
		return nil, ErrInvalidPublicKey
	}
	a, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, ErrInvalidPublicKey
	}
	k := &Key{neg: newTable(a.Negate(a), 8)}
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

// doubleMult sets p = [s]B + [c]U, with b B's table (radix 256) and u U's
// (radix 16).
func doubleMult(p *point, b *table, s *edwards25519.Scalar, u *table, c *edwards25519.Scalar) {
	var ec [64]int8
	signedRadix16(&ec, c.Bytes())
	p.setIdentity()
	for i := range 32 {
		addDigit(p, u.row(i), int(ec[2*i+1]))
	}
	for range 4 {
		p.double(p)
	}
	for i := range 32 {
		addDigit(p, u.row(i), int(ec[2*i]))
	}
	var es [32]int16
	signedRadix256(&es, s.Bytes())
	for i := range 32 {
		addDigit(p, b.row(i), int(es[i]))
	}
}

func addDigit(p *point, row []affine, e int) {
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

// signedRadix256 writes a reduced scalar as 32 digits e_k in [-128, 128),
// the last in [0, 32], with s = Σ e_k·256^k.
func signedRadix256(e *[32]int16, s []byte) {
	for i, b := range s[:32] {
		e[i] = int16(b)
	}
	for i := range 31 {
		if e[i] >= 128 {
			e[i] -= 256
			e[i+1]++
		}
	}
}
