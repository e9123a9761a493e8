package suite

import (
	"crypto/cipher"
)

// AEAD returns the suite's AEAD keyed with key.
func (cs CipherSuite) AEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != cs.Nk() {
		return nil, ErrKeyLength
	}
	a, err := cs.p().aead.New(key)
	if err != nil {
		return nil, ErrKeyLength
	}
	return a, nil
}

// Seal encrypts and authenticates plaintext with the suite's AEAD,
// appending the result to dst.
func (cs CipherSuite) Seal(dst, key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := cs.AEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, ErrKeyLength
	}
	return a.Seal(dst, nonce, plaintext, aad), nil
}

// Open decrypts and authenticates ciphertext with the suite's AEAD,
// appending the plaintext to dst.
func (cs CipherSuite) Open(dst, key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := cs.AEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, ErrKeyLength
	}
	out, err := a.Open(dst, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecryption
	}
	return out, nil
}
