package edverify

import "errors"

// ErrInvalidPublicKey is returned for a public key that is not an encoded
// point of edwards25519.
var ErrInvalidPublicKey = errors.New("edverify: invalid Ed25519 public key")
