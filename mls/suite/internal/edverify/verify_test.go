package edverify

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha512"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

func randScalar(r *rand.Rand) *edwards25519.Scalar {
	var b [64]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	s, err := edwards25519.NewScalar().SetUniformBytes(b[:])
	if err != nil {
		panic(err)
	}
	return s
}

func encode(p *point) []byte {
	var b [32]byte
	p.bytes(&b)
	return b[:]
}

func fromPoint(q *edwards25519.Point) *point { return new(point).fromEdwards(q) }

// torsion returns the eight points of order dividing 8, found as [l]P for
// points P decoded from counter values until one has order 8.
func torsion(t testing.TB) []*edwards25519.Point {
	t.Helper()
	lMinus1 := edwards25519.NewScalar().Subtract(edwards25519.NewScalar(), new(edwards25519.Scalar).Set(scalarOne()))
	id := edwards25519.NewIdentityPoint()
	for y := byte(2); y < 255; y++ {
		enc := make([]byte, 32)
		enc[0] = y
		p, err := new(edwards25519.Point).SetBytes(enc)
		if err != nil {
			continue
		}
		tp := new(edwards25519.Point).ScalarMult(lMinus1, p)
		tp.Add(tp, p) // [l]P
		// Order 8 exactly: [4]T is not the identity.
		four := new(edwards25519.Point).Add(tp, tp)
		four.Add(four, four)
		if four.Equal(id) == 1 {
			continue
		}
		out := []*edwards25519.Point{edwards25519.NewIdentityPoint()}
		for i := 1; i < 8; i++ {
			out = append(out, new(edwards25519.Point).Add(out[i-1], tp))
		}
		if new(edwards25519.Point).Add(out[7], tp).Equal(id) != 1 {
			t.Fatal("[8]T is not the identity")
		}
		return out
	}
	t.Fatal("no point of order 8 found")
	return nil
}

func scalarOne() *edwards25519.Scalar {
	var b [32]byte
	b[0] = 1
	s, _ := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	return s
}

func TestPointArithmeticMatchesEdwards25519(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		a := new(edwards25519.Point).ScalarBaseMult(randScalar(r))
		b := new(edwards25519.Point).ScalarBaseMult(randScalar(r))
		sum := new(edwards25519.Point).Add(a, b)
		if got := encode(new(point).add(fromPoint(a), fromPoint(b))); !bytes.Equal(got, sum.Bytes()) {
			t.Fatalf("add: got %x, want %x", got, sum.Bytes())
		}
		dbl := new(edwards25519.Point).Add(a, a)
		if got := encode(new(point).double(fromPoint(a))); !bytes.Equal(got, dbl.Bytes()) {
			t.Fatalf("double: got %x, want %x", got, dbl.Bytes())
		}
		var aff [1]affine
		toAffine(aff[:], []point{*fromPoint(b)})
		if got := encode(new(point).addAffine(fromPoint(a), &aff[0], false)); !bytes.Equal(got, sum.Bytes()) {
			t.Fatalf("addAffine: got %x, want %x", got, sum.Bytes())
		}
		diff := new(edwards25519.Point).Subtract(a, b)
		if got := encode(new(point).addAffine(fromPoint(a), &aff[0], true)); !bytes.Equal(got, diff.Bytes()) {
			t.Fatalf("addAffine, negated: got %x, want %x", got, diff.Bytes())
		}
	}
}

func TestTableHoldsMultiples(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	p := new(edwards25519.Point).ScalarBaseMult(randScalar(r))
	// A point with a torsion component too: the table must hold the true
	// multiples, not those of its prime-order part.
	p.Add(p, torsion(t)[3])
	for _, per := range []int{8, 128} {
		tab := newTable(p, per)
		mult := new(edwards25519.Point).Set(p) // [256^i]P
		for i := range 32 {
			q := new(edwards25519.Point).Set(mult)
			for j := range per {
				var acc point
				acc.setIdentity()
				acc.addAffine(&acc, &tab.row(i)[j], false)
				if got := encode(&acc); !bytes.Equal(got, q.Bytes()) {
					t.Fatalf("per %d: row %d, multiple %d = %x, want %x", per, i, j+1, got, q.Bytes())
				}
				q.Add(q, mult)
			}
			for range 8 {
				mult.Add(mult, mult)
			}
		}
	}
}

// TestSignedDigits checks both digit writings of random scalars: every
// digit in its range, and Σ e_k·base^k equal to the scalar.
func TestSignedDigits(t *testing.T) {
	cases := []struct {
		name       string
		base       uint64
		digits     func(s []byte) []int
		lo, hi     int // range of every digit but the last: [lo, hi)
		topLo, top int // range of the last: [topLo, top]
	}{
		{"radix16", 16, func(s []byte) []int {
			var e [64]int8
			signedRadix16(&e, s)
			out := make([]int, len(e))
			for i, d := range e {
				out[i] = int(d)
			}
			return out
		}, -8, 8, -8, 8},
		{"radix256", 256, func(s []byte) []int {
			var e [32]int16
			signedRadix256(&e, s)
			out := make([]int, len(e))
			for i, d := range e {
				out[i] = int(d)
			}
			return out
		}, -128, 128, 0, 32},
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 200 {
				s := randScalar(r)
				e := c.digits(s.Bytes())
				acc := edwards25519.NewScalar()
				base := scalarOf(c.base)
				for k := len(e) - 1; k >= 0; k-- {
					last := k == len(e)-1
					if !last && (e[k] < c.lo || e[k] >= c.hi) || last && (e[k] < c.topLo || e[k] > c.top) {
						t.Fatalf("digit %d = %d out of range", k, e[k])
					}
					acc.Multiply(acc, base)
					if e[k] < 0 {
						acc.Subtract(acc, scalarOf(uint64(-e[k])))
					} else {
						acc.Add(acc, scalarOf(uint64(e[k])))
					}
				}
				if acc.Equal(s) != 1 {
					t.Fatalf("digits of %x recompose to %x", s.Bytes(), acc.Bytes())
				}
			}
		})
	}
}

func scalarOf(v uint64) *edwards25519.Scalar {
	var b [32]byte
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
	s, err := edwards25519.NewScalar().SetCanonicalBytes(b[:])
	if err != nil {
		panic(err)
	}
	return s
}

// check demands that Key.Verify and crypto/ed25519.Verify agree, and
// returns their verdict.
func check(t *testing.T, pub, msg, sig []byte) bool {
	t.Helper()
	want := ed25519.Verify(pub, msg, sig)
	k, err := NewKey(pub)
	if err != nil {
		if want {
			t.Fatalf("NewKey(%x): %v, but crypto/ed25519 accepts a signature under it", pub, err)
		}
		return false
	}
	if got := k.Verify(msg, sig); got != want {
		t.Fatalf("Verify(pub %x, msg %x, sig %x) = %v, crypto/ed25519 says %v", pub, msg, sig, got, want)
	}
	return want
}

func TestVerifyAgreesWithCryptoEd25519(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	valid := 0
	for i := range 300 {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(r.Uint32())
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub := priv.Public().(ed25519.PublicKey)
		msg := make([]byte, r.IntN(2000))
		for j := range msg {
			msg[j] = byte(r.Uint32())
		}
		sig := ed25519.Sign(priv, msg)
		if !check(t, pub, msg, sig) {
			t.Fatalf("case %d: a valid signature is rejected", i)
		}
		valid++
		// Every single-bit change of the signature, key or message is
		// rejected by both.
		bad := bytes.Clone(sig)
		bad[r.IntN(64)] ^= 1 << r.IntN(8)
		if check(t, pub, msg, bad) {
			t.Fatalf("case %d: a changed signature is accepted", i)
		}
		if len(msg) > 0 {
			m := bytes.Clone(msg)
			m[r.IntN(len(m))] ^= 1 << r.IntN(8)
			if check(t, pub, m, sig) {
				t.Fatalf("case %d: a changed message is accepted", i)
			}
		}
		p := bytes.Clone(pub)
		p[r.IntN(32)] ^= 1 << r.IntN(8)
		check(t, p, msg, sig)
		// S + l: the same group element, a non-canonical scalar.
		nc := bytes.Clone(sig)
		addL(nc[32:])
		if check(t, pub, msg, nc) {
			t.Fatalf("case %d: a signature with S + l is accepted", i)
		}
		if !check(t, pub, msg, sig) {
			t.Fatalf("case %d: rejected on the second use", i)
		}
	}
	if valid != 300 {
		t.Fatalf("%d valid signatures checked, want 300", valid)
	}
}

// addL adds the group order l to a 32-byte little-endian scalar.
func addL(s []byte) {
	l := [32]byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}
	var carry uint16
	for i := range 32 {
		v := uint16(s[i]) + uint16(l[i]) + carry
		s[i], carry = byte(v), v>>8
	}
}

// TestVerifyAgreesOnTorsion builds signatures whose key and R carry
// small-order components, which the cofactorless check accepts only when
// they cancel, and keys that are small-order points or encoded
// non-canonically: both verifiers must give the same answer on each.
func TestVerifyAgreesOnTorsion(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	tors := torsion(t)
	accepted, rejected := 0, 0
	for i := range 400 {
		a, nonce := randScalar(r), randScalar(r)
		ta, tr := tors[r.IntN(8)], tors[r.IntN(8)]
		A := new(edwards25519.Point).ScalarBaseMult(a)
		A.Add(A, ta)
		R := new(edwards25519.Point).ScalarBaseMult(nonce)
		R.Add(R, tr)
		msg := []byte{byte(i), byte(i >> 8)}
		pub, rb := A.Bytes(), R.Bytes()
		h := sha512.Sum512(append(append(append([]byte(nil), rb...), pub...), msg...))
		c, _ := edwards25519.NewScalar().SetUniformBytes(h[:])
		s := edwards25519.NewScalar().MultiplyAdd(c, a, nonce)
		sig := append(rb, s.Bytes()...)
		if check(t, pub, msg, sig) {
			accepted++
		} else {
			rejected++
		}
	}
	if accepted == 0 || rejected == 0 {
		t.Fatalf("accepted %d, rejected %d: the cases do not reach both answers", accepted, rejected)
	}
	// Small-order keys, with any R and S.
	for _, T := range tors {
		for range 20 {
			rb := new(edwards25519.Point).ScalarBaseMult(randScalar(r)).Bytes()
			if r.IntN(2) == 0 {
				rb = tors[r.IntN(8)].Bytes()
			}
			sig := append(rb, randScalar(r).Bytes()...)
			check(t, T.Bytes(), []byte("m"), sig)
		}
	}
	// Non-canonical encodings: y + p for small y, and x = 0 with the sign
	// bit set.
	for y := range 19 {
		enc := make([]byte, 32)
		v := uint16(0xed) + uint16(y)
		enc[0] = byte(v)
		carry := v >> 8
		for i := 1; i < 31; i++ {
			v = 0xff + carry
			enc[i], carry = byte(v), v>>8
		}
		enc[31] = byte(0x7f + carry)
		for _, sign := range []byte{0, 0x80} {
			e := bytes.Clone(enc)
			e[31] |= sign
			sig := append(new(edwards25519.Point).ScalarBaseMult(randScalar(r)).Bytes(), randScalar(r).Bytes()...)
			check(t, e, []byte("m"), sig)
		}
	}
}

// The mutations FuzzVerify applies to a signature made by crypto/ed25519.
const (
	mutNone      = iota // none: both verifiers must accept
	mutSigBit           // flip a bit of the signature: both must reject
	mutMsgBit           // flip a bit of the message: both must reject
	mutSPlusL           // S + l, a non-canonical scalar: both must reject
	mutKeyBit           // flip a bit of the key
	mutR                // R replaced by fuzzer bytes
	mutS                // S replaced by fuzzer bytes
	mutSigLength        // signature cut or extended: both must reject
	mutTorsion          // small-order points added to A and R, S made to match
	mutRaw              // key and signature all fuzzer bytes
	numMutations
)

// FuzzVerify has the fuzzer choose a key seed, a message, one of the
// mutations above with its position, and bytes for the mutations that
// need them. The test signs the message with crypto/ed25519, applies the
// mutation, and demands that Key.Verify and crypto/ed25519.Verify agree,
// and for the mutations that fix the answer, that it is the right one: a
// signature left as made is accepted by both.
func FuzzVerify(f *testing.F) {
	tors := torsion(f)
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := []byte("message")
	raw := append(bytes.Clone(priv.Public().(ed25519.PublicKey)), ed25519.Sign(priv, msg)...)
	for m := range numMutations {
		f.Add([]byte{byte(m)}, msg, uint8(m), uint16(37*m), raw)
	}
	f.Add([]byte{}, []byte{}, uint8(mutRaw), uint16(0), make([]byte, 96))
	f.Add([]byte{}, []byte{}, uint8(mutTorsion), uint16(0), []byte{})
	f.Fuzz(func(t *testing.T, seed, msg []byte, mutation uint8, pos uint16, data []byte) {
		var sd [ed25519.SeedSize]byte
		copy(sd[:], seed)
		priv := ed25519.NewKeyFromSeed(sd[:])
		pub := bytes.Clone(priv.Public().(ed25519.PublicKey))
		sig := ed25519.Sign(priv, msg)
		// take returns n bytes of data, padded with zeros.
		take := func(n int) []byte {
			b := make([]byte, n)
			copy(b, data)
			return b
		}
		switch mutation % numMutations {
		case mutNone:
			if !check(t, pub, msg, sig) {
				t.Fatal("a valid signature is rejected")
			}
		case mutSigBit:
			b := int(pos) % (8 * SignatureSize)
			sig[b/8] ^= 1 << (b % 8)
			if check(t, pub, msg, sig) {
				t.Fatalf("a signature with bit %d flipped is accepted", b)
			}
		case mutMsgBit:
			if len(msg) == 0 {
				msg = []byte{byte(pos)}
			} else {
				msg = bytes.Clone(msg)
				b := int(pos) % (8 * len(msg))
				msg[b/8] ^= 1 << (b % 8)
			}
			if check(t, pub, msg, sig) {
				t.Fatal("a signature of another message is accepted")
			}
		case mutSPlusL:
			addL(sig[32:])
			if check(t, pub, msg, sig) {
				t.Fatal("a signature with S + l is accepted")
			}
		case mutKeyBit:
			b := int(pos) % (8 * PublicKeySize)
			pub[b/8] ^= 1 << (b % 8)
			check(t, pub, msg, sig)
		case mutR:
			copy(sig[:32], take(32))
			check(t, pub, msg, sig)
		case mutS:
			copy(sig[32:], take(32))
			check(t, pub, msg, sig)
		case mutSigLength:
			if n := int(pos) % (2 * SignatureSize); n < SignatureSize {
				sig = sig[:n]
			} else {
				sig = append(sig, take(n-SignatureSize+1)...)
			}
			if check(t, pub, msg, sig) {
				t.Fatalf("a signature of %d bytes is accepted", len(sig))
			}
		case mutTorsion:
			ta, tr := tors[pos%8], tors[(pos>>3)%8]
			pub, sig = torsionSignature(sd[:], msg, ta, tr)
			ok := check(t, pub, msg, sig)
			if pos%64 == 0 && (!ok || !bytes.Equal(sig, ed25519.Sign(priv, msg))) {
				t.Fatal("without torsion, torsionSignature is not crypto/ed25519's signature")
			}
		case mutRaw:
			if len(data) < PublicKeySize {
				if _, err := NewKey(data); err == nil {
					t.Fatalf("NewKey accepted a %d-byte key", len(data))
				}
				return
			}
			check(t, data[:PublicKeySize], msg, data[PublicKeySize:])
		}
	})
}

// torsionSignature signs msg as crypto/ed25519 does with the key of seed,
// but with the small-order point ta added to the key A and tr to the
// nonce point R, and S computed for them: with both the identity it is
// the ordinary signature.
func torsionSignature(seed, msg []byte, ta, tr *edwards25519.Point) (pub, sig []byte) {
	h := sha512.Sum512(seed)
	a, err := edwards25519.NewScalar().SetBytesWithClamping(h[:32])
	if err != nil {
		panic(err)
	}
	nh := sha512.Sum512(append(bytes.Clone(h[32:]), msg...))
	nonce, err := edwards25519.NewScalar().SetUniformBytes(nh[:])
	if err != nil {
		panic(err)
	}
	A := new(edwards25519.Point).ScalarBaseMult(a)
	A.Add(A, ta)
	R := new(edwards25519.Point).ScalarBaseMult(nonce)
	R.Add(R, tr)
	pub, rb := A.Bytes(), R.Bytes()
	ch := sha512.New()
	ch.Write(rb)
	ch.Write(pub)
	ch.Write(msg)
	c, err := edwards25519.NewScalar().SetUniformBytes(ch.Sum(nil))
	if err != nil {
		panic(err)
	}
	s := edwards25519.NewScalar().MultiplyAdd(c, a, nonce)
	return pub, append(rb, s.Bytes()...)
}
