// Package suite implements the MLS cipher suites (RFC 9420, §5 and §17.1)
// and the labelled cryptographic helpers built on them: ExpandWithLabel,
// DeriveSecret, DeriveTreeSecret, RefHash, SignWithLabel/VerifyWithLabel and
// EncryptWithLabel/DecryptWithLabel.
//
// HPKE comes from github.com/cloudflare/circl, signatures from the standard
// library (Ed25519, ECDSA) and circl (Ed448). Beside RFC 9420's suites, it
// implements two suites whose KEM is the post-quantum/traditional hybrid
// X-Wing (ML-KEM-768 with X25519); see pq.go. Every function that needs
// randomness takes an io.Reader; nil means crypto/rand.
//
// Private keys (SignaturePrivateKey, HPKEPrivateKey) and the secrets passed
// to the KDF functions must stay secret; their types redact themselves
// when printed.
package suite

import (
	"crypto"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"

	"github.com/cloudflare/circl/hpke"
)

// CipherSuite is an MLS cipher suite identifier (IANA "MLS Cipher Suites").
type CipherSuite uint16

// The cipher suites of RFC 9420, §17.1.
const (
	MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519        CipherSuite = 0x0001
	MLS_128_DHKEMP256_AES128GCM_SHA256_P256             CipherSuite = 0x0002
	MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519 CipherSuite = 0x0003
	MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448            CipherSuite = 0x0004
	MLS_256_DHKEMP521_AES256GCM_SHA512_P521             CipherSuite = 0x0005
	MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448     CipherSuite = 0x0006
	MLS_256_DHKEMP384_AES256GCM_SHA384_P384             CipherSuite = 0x0007
)

// All lists every cipher suite this package implements, in numeric order.
var All = []CipherSuite{1, 2, 3, 4, 5, 6, 7,
	MLS_256_XWING_AES256GCM_SHA512_Ed25519, MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519}

// signatureScheme identifies a signature algorithm by its TLS
// SignatureScheme code point.
type signatureScheme uint16

const (
	ecdsaP256SHA256 signatureScheme = 0x0403
	ecdsaP384SHA384 signatureScheme = 0x0503
	ecdsaP521SHA512 signatureScheme = 0x0603
	schemeEd25519   signatureScheme = 0x0807
	schemeEd448     signatureScheme = 0x0808
)

type params struct {
	name    string
	hash    crypto.Hash
	newHash func() hash.Hash
	kem     hpke.KEM
	kemHash crypto.Hash // the KDF hash of a DHKEM, for DeriveKeyPair (none for X-Wing)
	kdf     hpke.KDF
	aead    hpke.AEAD
	sig     signatureScheme
	curve   elliptic.Curve // ECDSA curve, nil for EdDSA
	hpke    hpke.Suite
	nk, nn  int // AEAD key and nonce sizes
}

var table = [...]*params{
	1: {
		name: "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519",
		hash: crypto.SHA256, newHash: sha256.New,
		kem: hpke.KEM_X25519_HKDF_SHA256, kemHash: crypto.SHA256,
		kdf: hpke.KDF_HKDF_SHA256, aead: hpke.AEAD_AES128GCM,
		sig: schemeEd25519, nk: 16, nn: 12,
	},
	2: {
		name: "MLS_128_DHKEMP256_AES128GCM_SHA256_P256",
		hash: crypto.SHA256, newHash: sha256.New,
		kem: hpke.KEM_P256_HKDF_SHA256, kemHash: crypto.SHA256,
		kdf: hpke.KDF_HKDF_SHA256, aead: hpke.AEAD_AES128GCM,
		sig: ecdsaP256SHA256, curve: elliptic.P256(), nk: 16, nn: 12,
	},
	3: {
		name: "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519",
		hash: crypto.SHA256, newHash: sha256.New,
		kem: hpke.KEM_X25519_HKDF_SHA256, kemHash: crypto.SHA256,
		kdf: hpke.KDF_HKDF_SHA256, aead: hpke.AEAD_ChaCha20Poly1305,
		sig: schemeEd25519, nk: 32, nn: 12,
	},
	4: {
		name: "MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448",
		hash: crypto.SHA512, newHash: sha512.New,
		kem: hpke.KEM_X448_HKDF_SHA512, kemHash: crypto.SHA512,
		kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_AES256GCM,
		sig: schemeEd448, nk: 32, nn: 12,
	},
	5: {
		name: "MLS_256_DHKEMP521_AES256GCM_SHA512_P521",
		hash: crypto.SHA512, newHash: sha512.New,
		kem: hpke.KEM_P521_HKDF_SHA512, kemHash: crypto.SHA512,
		kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_AES256GCM,
		sig: ecdsaP521SHA512, curve: elliptic.P521(), nk: 32, nn: 12,
	},
	6: {
		name: "MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448",
		hash: crypto.SHA512, newHash: sha512.New,
		kem: hpke.KEM_X448_HKDF_SHA512, kemHash: crypto.SHA512,
		kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_ChaCha20Poly1305,
		sig: schemeEd448, nk: 32, nn: 12,
	},
	7: {
		name: "MLS_256_DHKEMP384_AES256GCM_SHA384_P384",
		hash: crypto.SHA384, newHash: sha512.New384,
		kem: hpke.KEM_P384_HKDF_SHA384, kemHash: crypto.SHA384,
		kdf: hpke.KDF_HKDF_SHA384, aead: hpke.AEAD_AES256GCM,
		sig: ecdsaP384SHA384, curve: elliptic.P384(), nk: 32, nn: 12,
	},
	0x0053: {
		name: "MLS_256_XWING_AES256GCM_SHA512_Ed25519",
		hash: crypto.SHA512, newHash: sha512.New,
		kem: hpke.KEM_XWING,
		kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_AES256GCM,
		sig: schemeEd25519, nk: 32, nn: 12,
	},
	0x0054: {
		name: "MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519",
		hash: crypto.SHA512, newHash: sha512.New,
		kem: hpke.KEM_XWING,
		kdf: hpke.KDF_HKDF_SHA512, aead: hpke.AEAD_ChaCha20Poly1305,
		sig: schemeEd25519, nk: 32, nn: 12,
	},
}

func init() {
	for _, p := range table {
		if p != nil {
			p.hpke = hpke.NewSuite(p.kem, p.kdf, p.aead)
		}
	}
}

// IsValid reports whether this package implements cs.
func (cs CipherSuite) IsValid() bool {
	return int(cs) < len(table) && table[cs] != nil
}

// p returns the parameters of cs. Callers must have checked IsValid; an
// invalid suite is a programming error.
func (cs CipherSuite) p() *params {
	if !cs.IsValid() {
		panic(fmt.Sprintf("suite: unsupported cipher suite 0x%04x", uint16(cs)))
	}
	return table[cs]
}

// Check returns ErrUnsupportedSuite if cs is not implemented.
func (cs CipherSuite) Check() error {
	if !cs.IsValid() {
		return fmt.Errorf("%w: 0x%04x", ErrUnsupportedSuite, uint16(cs))
	}
	return nil
}

func (cs CipherSuite) String() string {
	if !cs.IsValid() {
		return fmt.Sprintf("CipherSuite(0x%04x)", uint16(cs))
	}
	return table[cs].name
}

// Nh is the output size of the suite's hash and KDF.Extract, in bytes.
func (cs CipherSuite) Nh() int { return cs.p().hash.Size() }

// Nk is the AEAD key size in bytes.
func (cs CipherSuite) Nk() int { return cs.p().nk }

// Nn is the AEAD nonce size in bytes.
func (cs CipherSuite) Nn() int { return cs.p().nn }

// Hash returns the hash of data under the suite's hash function.
func (cs CipherSuite) Hash(data []byte) []byte {
	h := cs.p().newHash()
	h.Write(data)
	return h.Sum(nil)
}

// NewHash returns a new hash.Hash of the suite's hash function.
func (cs CipherSuite) NewHash() hash.Hash { return cs.p().newHash() }
