package suite

import (
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
)

// maxBlockInfo bounds the info of an expansion computed by expandBlock;
// every KDFLabel of the protocol's own derivations fits.
const maxBlockInfo = 256

// expandBlock computes HKDF-Expand(prk, info, length) for an output of at
// most one hash length: T(1) = HMAC-Hash(prk, info || 0x01), truncated.
// It is RFC 2104 HMAC written out over fixed buffers on the stack: the
// secret tree and key schedule call Expand several times per message, and
// crypto/hmac with crypto/hkdf allocate ten times per call, which cost
// about two thirds of the expansion's time. It reports false when the
// case is not one it handles (a key longer than the hash block, a long
// info, a longer output or another hash), for Expand to use crypto/hkdf.
func expandBlock(h crypto.Hash, prk, info []byte, length int) ([]byte, bool) {
	var block int
	switch h {
	case crypto.SHA256:
		block = sha256.BlockSize
	case crypto.SHA384, crypto.SHA512:
		block = sha512.BlockSize
	default:
		return nil, false
	}
	size := h.Size()
	if length > size || len(prk) > block || len(info) > maxBlockInfo {
		return nil, false
	}
	var inner [sha512.BlockSize + maxBlockInfo + 1]byte
	var outer [sha512.BlockSize + sha512.Size]byte
	copy(inner[:block], prk)
	copy(outer[:block], prk)
	for i := range block {
		inner[i] ^= 0x36
		outer[i] ^= 0x5c
	}
	n := block + copy(inner[block:], info)
	inner[n] = 1
	n++
	out := make([]byte, length)
	switch h {
	case crypto.SHA256:
		d := sha256.Sum256(inner[:n])
		copy(outer[block:], d[:])
		d = sha256.Sum256(outer[:block+size])
		copy(out, d[:])
	case crypto.SHA384:
		d := sha512.Sum384(inner[:n])
		copy(outer[block:], d[:])
		d = sha512.Sum384(outer[:block+size])
		copy(out, d[:])
	case crypto.SHA512:
		d := sha512.Sum512(inner[:n])
		copy(outer[block:], d[:])
		d = sha512.Sum512(outer[:block+size])
		copy(out, d[:])
	}
	clear(inner[:block])
	clear(outer[:block])
	return out, true
}
