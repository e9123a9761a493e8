package suite

import "errors"

var (
	// ErrUnsupportedSuite reports a cipher suite this package does not implement.
	ErrUnsupportedSuite = errors.New("suite: unsupported cipher suite")
	// ErrInvalidPublicKey reports a public key that does not decode for the suite.
	ErrInvalidPublicKey = errors.New("suite: invalid public key")
	// ErrInvalidPrivateKey reports a private key that does not decode for the suite.
	ErrInvalidPrivateKey = errors.New("suite: invalid private key")
	// ErrInvalidSignature reports a signature that does not verify.
	ErrInvalidSignature = errors.New("suite: invalid signature")
	// ErrDecryption reports an HPKE or AEAD ciphertext that does not open.
	ErrDecryption = errors.New("suite: decryption failed")
	// ErrKeyLength reports an AEAD key or nonce of the wrong size.
	ErrKeyLength = errors.New("suite: wrong key or nonce length")
	// ErrOutputLength reports a KDF output length the KDF cannot produce.
	ErrOutputLength = errors.New("suite: KDF output length out of range")
	// ErrDeriveKeyPair reports that HPKE DeriveKeyPair found no valid key.
	ErrDeriveKeyPair = errors.New("suite: DeriveKeyPair failed")
)
