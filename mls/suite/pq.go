package suite

import (
	"crypto/sha3"
	"fmt"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/kem/xwing"
)

// The post-quantum cipher suites: HPKE with the X-Wing KEM
// (draft-connolly-cfrg-xwing-kem, HPKE KEM id 0x647a: ML-KEM-768 and X25519
// combined with SHA3-256), HKDF-SHA512, SHA-512 as the MLS hash, and
// Ed25519 signatures. They protect a group's secrets against a later
// quantum computer ("harvest now, decrypt later"); authentication stays
// classical.
//
// Neither the names nor the code points are the working group's:
// draft-ietf-mls-pq-ciphersuites (versions -00 to -06, IANA Considerations)
// leaves every code point TBD and names other suites (its X-Wing ones are
// MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 and
// MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519, with KEM 0x647a). These
// two follow ts-mls 1.x (src/crypto/ciphersuite.ts: 83 and 84, KEM
// "X-Wing", KDF HKDF-SHA512, hash SHA-512, Ed25519), so that Parley and
// ts-mls can share groups; ts-mls 2.x moved the same suites to the private
// range (0xF00D, 0xF00E). When IANA assigns code points, they become new
// entries here beside these.
const (
	MLS_256_XWING_AES256GCM_SHA512_Ed25519        CipherSuite = 0x0053
	MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519 CipherSuite = 0x0054
)

// deriveXWingSeed is the first step of X-Wing's DeriveKeyPair(ikm) for HPKE
// (draft-connolly-cfrg-xwing-kem, "Use in HPKE"): the 32-byte private key
// (the seed of GenerateKeyPairDerand) is SHAKE256(ikm, 256 bits), for ikm
// of any length, as circl's hpke.KEM_XWING and ts-mls's X-Wing KEM
// (@hpke/hybridkem-x-wing) do. The result is secret.
func deriveXWingSeed(ikm []byte, nsk int) []byte {
	return sha3.SumSHAKE256(ikm, nsk)
}

// validateXWingPublicKey accepts exactly the keys circl's
// UnmarshalBinaryPublicKey accepts: 1216 bytes, an ML-KEM-768 encapsulation
// key that passes FIPS 203's modulus check (§7.2: every 12-bit coefficient
// of t̂ is below q = 3329) followed by an X25519 key, which X-Wing does not
// check. It does so without expanding ML-KEM's matrix from ρ, three
// quarters of a decode's cost, which a joiner would pay for every key of
// the tree.
func validateXWingPublicKey(pub []byte) error {
	if len(pub) != xwing.PublicKeySize {
		return fmt.Errorf("%w: X-Wing key of %d bytes, want %d", ErrInvalidPublicKey, len(pub), xwing.PublicKeySize)
	}
	const q = 3329
	t := pub[:mlkem768.PublicKeySize-32] // t̂ (384·k bytes), then ρ
	for i := 0; i < len(t); i += 3 {
		c0 := uint16(t[i]) | uint16(t[i+1]&0x0f)<<8
		c1 := uint16(t[i+1])>>4 | uint16(t[i+2])<<4
		if c0 >= q || c1 >= q {
			return fmt.Errorf("%w: ML-KEM-768 key fails the modulus check", ErrInvalidPublicKey)
		}
	}
	return nil
}
