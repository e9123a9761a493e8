package suite

import (
	"crypto/hkdf"
	"crypto/hmac"
	"encoding/binary"
	"hash"
)

// labelPrefix is prepended to every label of the labelled functions (§5.1).
const labelPrefix = "MLS 1.0 "

// Extract is KDF.Extract(salt, ikm) (HKDF-Extract with the suite's hash).
func (cs CipherSuite) Extract(salt, ikm []byte) []byte {
	p := cs.p()
	out, err := hkdf.Extract(p.newHash, ikm, salt)
	if err != nil {
		// HKDF-Extract cannot fail outside FIPS-only mode restrictions.
		panic("suite: HKDF-Extract: " + err.Error())
	}
	return out
}

// Expand is KDF.Expand(prk, info, length).
func (cs CipherSuite) Expand(prk, info []byte, length int) ([]byte, error) {
	if length < 0 || length > 255*cs.Nh() {
		return nil, ErrOutputLength
	}
	p := cs.p()
	if out, ok := expandBlock(p.hash, prk, info, length); ok {
		return out, nil
	}
	out, err := hkdf.Expand(p.newHash, prk, string(info), length)
	if err != nil {
		return nil, ErrOutputLength
	}
	return out, nil
}

// kdfLabel encodes KDFLabel (§5.1).
func kdfLabel(length uint16, label string, context []byte) []byte {
	if len(context) >= 1<<30 {
		panic("suite: KDFLabel context too long") // no derivation of the protocol comes near
	}
	out := make([]byte, 0, 2+4+len(labelPrefix)+len(label)+4+len(context))
	out = binary.BigEndian.AppendUint16(out, length)
	out = varintHeader(out, len(labelPrefix)+len(label))
	out = append(out, labelPrefix...)
	out = append(out, label...)
	out = varintHeader(out, len(context))
	return append(out, context...)
}

// ExpandWithLabel is ExpandWithLabel(secret, label, context, length) (§5.1).
// The label is given without the "MLS 1.0 " prefix.
func (cs CipherSuite) ExpandWithLabel(secret []byte, label string, context []byte, length uint16) ([]byte, error) {
	return cs.Expand(secret, kdfLabel(length, label, context), int(length))
}

// DeriveSecret is DeriveSecret(secret, label) (§5.1): ExpandWithLabel with
// an empty context and a length of Nh.
func (cs CipherSuite) DeriveSecret(secret []byte, label string) []byte {
	out, err := cs.ExpandWithLabel(secret, label, nil, uint16(cs.Nh()))
	if err != nil {
		panic("suite: DeriveSecret: " + err.Error()) // Nh is always in range
	}
	return out
}

// DeriveTreeSecret is DeriveTreeSecret(secret, label, generation, length)
// (§9).
func (cs CipherSuite) DeriveTreeSecret(secret []byte, label string, generation uint32, length uint16) ([]byte, error) {
	var ctx [4]byte
	binary.BigEndian.PutUint32(ctx[:], generation)
	return cs.ExpandWithLabel(secret, label, ctx[:], length)
}

// RefHash is RefHash(label, value) (§5.2). The label is used as given.
func (cs CipherSuite) RefHash(label string, value []byte) []byte {
	h := cs.p().newHash()
	var hdr [4]byte
	h.Write(varintHeader(hdr[:0], len(label)))
	h.Write([]byte(label))
	h.Write(varintHeader(hdr[:0], len(value)))
	h.Write(value)
	return h.Sum(nil)
}

// varintHeader appends the minimal variable-length integer encoding of n.
// n must be below 2^30.
func varintHeader(dst []byte, n int) []byte {
	switch {
	case n < 1<<6:
		return append(dst, byte(n))
	case n < 1<<14:
		return append(dst, byte(n>>8)|0x40, byte(n))
	default:
		return append(dst, byte(n>>24)|0x80, byte(n>>16), byte(n>>8), byte(n))
	}
}

// Labels of the reference hashes (§5.2).
const (
	KeyPackageRefLabel = "MLS 1.0 KeyPackage Reference"
	ProposalRefLabel   = "MLS 1.0 Proposal Reference"
)

// KeyPackageRef returns the reference of an encoded KeyPackage (§5.2).
func (cs CipherSuite) KeyPackageRef(keyPackage []byte) []byte {
	return cs.RefHash(KeyPackageRefLabel, keyPackage)
}

// ProposalRef returns the reference of an encoded AuthenticatedContent
// carrying a proposal (§5.2).
func (cs CipherSuite) ProposalRef(authenticatedContent []byte) []byte {
	return cs.RefHash(ProposalRefLabel, authenticatedContent)
}

// MAC computes the suite's MAC (HMAC with the suite's hash) of data.
func (cs CipherSuite) MAC(key, data []byte) []byte {
	m := hmac.New(cs.p().newHash, key)
	m.Write(data)
	return m.Sum(nil)
}

// VerifyMAC reports in constant time whether tag is the MAC of data.
func (cs CipherSuite) VerifyMAC(key, data, tag []byte) bool {
	return hmac.Equal(cs.MAC(key, data), tag)
}

// NewMAC returns an HMAC with the suite's hash, for MACs over data written
// in pieces.
func (cs CipherSuite) NewMAC(key []byte) hash.Hash { return hmac.New(cs.p().newHash, key) }

func hkdfExtract[H hash.Hash](h func() H, salt, ikm []byte) []byte {
	out, err := hkdf.Extract(h, ikm, salt)
	if err != nil {
		panic("suite: HKDF-Extract: " + err.Error())
	}
	return out
}

func hkdfExpand[H hash.Hash](h func() H, prk, info []byte, l int) []byte {
	out, err := hkdf.Expand(h, prk, string(info), l)
	if err != nil {
		panic("suite: HKDF-Expand: " + err.Error()) // lengths here are fixed and small
	}
	return out
}
