// Package codec implements the TLS presentation language as used by MLS
// (RFC 9420, §2.1): fixed-width integers, vectors with variable-length
// integer headers (§2.1.2), and optional values.
//
// Encoding and decoding are built on golang.org/x/crypto/cryptobyte.
// Decoders check every length against the remaining input before using it,
// so a short message can never make the decoder allocate a large buffer,
// and they accept only minimal variable-length integers. Decoded byte
// slices alias the input: callers must not modify a buffer after decoding
// from it.
package codec

import (
	"golang.org/x/crypto/cryptobyte"
)

// MaxVarint is the largest value a variable-length integer can carry
// (2^30 - 1, RFC 9420 §2.1.2).
const MaxVarint = 1<<30 - 1

// Marshaler is a value with an MLS wire encoding.
type Marshaler interface {
	// MarshalMLS appends the encoding of the value to b. Encoding errors
	// (for example a vector longer than 2^30-1 bytes) are recorded in b.
	MarshalMLS(b *cryptobyte.Builder)
}

// Unmarshaler is a value that can be decoded from its MLS wire encoding.
type Unmarshaler interface {
	// UnmarshalMLS reads the value from the front of s, advancing s, and
	// reports whether the input was well formed. On failure the value is
	// left in an unspecified state.
	UnmarshalMLS(s *cryptobyte.String) bool
}

// Marshal returns the encoding of v.
func Marshal(v Marshaler) ([]byte, error) {
	var b cryptobyte.Builder
	v.MarshalMLS(&b)
	out, err := b.Bytes()
	if err != nil {
		return nil, encodeError(err)
	}
	return out, nil
}

// MustMarshal returns the encoding of v and panics if v cannot be encoded.
// Use it only for values whose encoding cannot fail (no vector can exceed
// 2^30-1 bytes).
func MustMarshal(v Marshaler) []byte {
	out, err := Marshal(v)
	if err != nil {
		panic(err)
	}
	return out
}

// Unmarshal decodes data into v. The whole input must be consumed: trailing
// bytes are an error.
func Unmarshal(data []byte, v Unmarshaler) error {
	s := cryptobyte.String(data)
	if !v.UnmarshalMLS(&s) {
		return ErrMalformed
	}
	if !s.Empty() {
		return ErrTrailingBytes
	}
	return nil
}

// AddVarint appends v as a minimal variable-length integer.
func AddVarint(b *cryptobyte.Builder, v uint64) {
	switch {
	case v < 1<<6:
		b.AddUint8(uint8(v))
	case v < 1<<14:
		b.AddUint16(uint16(v) | 0x4000)
	case v < 1<<30:
		b.AddUint32(uint32(v) | 0x80000000)
	default:
		b.SetError(ErrVarintRange)
	}
}

// ReadVarint reads a variable-length integer from s. Encodings that are not
// minimal, and the reserved prefix 0b11, are malformed.
func ReadVarint(s *cryptobyte.String, out *uint64) bool {
	if len(*s) == 0 {
		return false
	}
	first := (*s)[0]
	switch first >> 6 {
	case 0:
		*out = uint64(first)
		*s = (*s)[1:]
		return true
	case 1:
		var v uint16
		if !s.ReadUint16(&v) {
			return false
		}
		v &= 0x3fff
		if v < 1<<6 {
			return false
		}
		*out = uint64(v)
		return true
	case 2:
		var v uint32
		if !s.ReadUint32(&v) {
			return false
		}
		v &= 0x3fffffff
		if v < 1<<14 {
			return false
		}
		*out = uint64(v)
		return true
	default:
		return false
	}
}

// AddOpaque appends data as opaque<V>.
func AddOpaque(b *cryptobyte.Builder, data []byte) {
	AddVarint(b, uint64(len(data)))
	b.AddBytes(data)
}

// ReadOpaque reads an opaque<V> from s. The result aliases s.
func ReadOpaque(s *cryptobyte.String, out *[]byte) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	*out = body
	return true
}

// AddVector appends a vector<V> whose body is written by f.
func AddVector(b *cryptobyte.Builder, f cryptobyte.BuilderContinuation) {
	var child cryptobyte.Builder
	f(&child)
	body, err := child.Bytes()
	if err != nil {
		b.SetError(err)
		return
	}
	AddOpaque(b, body)
}

// ReadVector reads the body of a vector<V> from s into out. The length is
// checked against the remaining input before anything is sliced.
func ReadVector(s *cryptobyte.String, out *cryptobyte.String) bool {
	var n uint64
	if !ReadVarint(s, &n) {
		return false
	}
	if n > uint64(len(*s)) {
		return false
	}
	*out = (*s)[:n]
	*s = (*s)[n:]
	return true
}

// ReadVectorElems reads a vector<V> and calls elem until its body is
// consumed. elem must advance the string it is given.
func ReadVectorElems(s *cryptobyte.String, elem func(*cryptobyte.String) bool) bool {
	var body cryptobyte.String
	if !ReadVector(s, &body) {
		return false
	}
	for !body.Empty() {
		if !elem(&body) {
			return false
		}
	}
	return true
}

// AddOptional appends optional<T>: a presence byte, then the value written
// by f when present is true.
func AddOptional(b *cryptobyte.Builder, present bool, f cryptobyte.BuilderContinuation) {
	if !present {
		b.AddUint8(0)
		return
	}
	b.AddUint8(1)
	f(b)
}

// ReadOptional reads the presence byte of an optional<T>. Values other than
// 0 and 1 are malformed.
func ReadOptional(s *cryptobyte.String, present *bool) bool {
	var v uint8
	if !s.ReadUint8(&v) {
		return false
	}
	switch v {
	case 0:
		*present = false
	case 1:
		*present = true
	default:
		return false
	}
	return true
}

// AddBool appends a TLS bool (one byte, 0 or 1).
func AddBool(b *cryptobyte.Builder, v bool) {
	if v {
		b.AddUint8(1)
	} else {
		b.AddUint8(0)
	}
}

// ReadBool reads a TLS bool, rejecting values other than 0 and 1.
func ReadBool(s *cryptobyte.String, out *bool) bool {
	return ReadOptional(s, out)
}

// ReadFixed reads exactly n bytes into out, aliasing s.
func ReadFixed(s *cryptobyte.String, n int, out *[]byte) bool {
	return s.ReadBytes(out, n)
}
