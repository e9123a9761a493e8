package suite

import (
	"bytes"
	"crypto/sha3"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem/xwing"
)

var xwingSuites = []CipherSuite{MLS_256_XWING_AES256GCM_SHA512_Ed25519, MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519}

// xwingVector is one test vector of draft-connolly-cfrg-xwing-kem
// ("Test vectors"; spec/test-vectors.json of its repository, unchanged from
// -06 to -10): the private key sk is the seed, eseed the encapsulation
// randomness.
type xwingVector struct {
	Seed, Sk, Pk, Eseed, Ct, Ss hexBytes
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

func xwingVectors(t *testing.T) []xwingVector {
	t.Helper()
	raw, err := os.ReadFile("testdata/xwing-test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []xwingVector
	if err := json.Unmarshal(raw, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	return vs
}

// The draft's vectors through this package's API: the private key parses to
// the vector's public key, EncryptWithLabel with the vector's eseed as its
// randomness gives the vector's ciphertext as kem_output, and decapsulating
// that kem_output with the parsed key gives the vector's shared secret.
func TestXWingKnownAnswers(t *testing.T) {
	for i, v := range xwingVectors(t) {
		for _, cs := range xwingSuites {
			k, err := cs.ParseHPKEPrivateKey(v.Sk)
			if err != nil {
				t.Fatalf("vector %d: %v", i, err)
			}
			if got := k.PublicKey(); !bytes.Equal(got, v.Pk) {
				t.Errorf("vector %d %v: public key %x…, want %x…", i, cs, got[:16], v.Pk[:16])
			}
			kemOutput, ct, err := cs.EncryptWithLabel(v.Pk, "Test", []byte("ctx"), []byte("secret"), bytes.NewReader(v.Eseed))
			if err != nil {
				t.Fatalf("vector %d: %v", i, err)
			}
			if !bytes.Equal(kemOutput, v.Ct) {
				t.Errorf("vector %d %v: kem_output %x…, want %x…", i, cs, kemOutput[:16], v.Ct[:16])
			}
			ss, err := xwing.Scheme().Decapsulate(k.sk, kemOutput)
			if err != nil || !bytes.Equal(ss, v.Ss) {
				t.Errorf("vector %d %v: shared secret %x (%v), want %x", i, cs, ss, err, v.Ss)
			}
			pt, err := cs.DecryptWithLabel(k, "Test", []byte("ctx"), kemOutput, ct)
			if err != nil || string(pt) != "secret" {
				t.Errorf("vector %d %v: decrypt = %q, %v", i, cs, pt, err)
			}
		}
	}
}

// DeriveKeyPair takes ikm of any length (MLS derives from Nh = 64-byte
// secrets) and must agree with circl's HPKE X-Wing KEM and with X-Wing's
// GenerateKeyPairDerand(SHAKE256(ikm, 32)).
func TestXWingDeriveKeyPair(t *testing.T) {
	cs := MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519
	for _, n := range []int{0, 1, 31, 32, 33, 64, 200} {
		ikm := bytes.Repeat([]byte{byte(n)}, n)
		k, err := cs.DeriveKeyPair(ikm)
		if err != nil {
			t.Fatalf("len %d: %v", n, err)
		}
		again, err := cs.DeriveKeyPair(ikm)
		if err != nil || !bytes.Equal(again.PublicKey(), k.PublicKey()) || !bytes.Equal(again.Bytes(), k.Bytes()) {
			t.Errorf("len %d: DeriveKeyPair is not deterministic", n)
		}
		pub, _ := hpke.KEM_XWING.Scheme().DeriveKeyPair(ikm)
		if want, _ := pub.MarshalBinary(); !bytes.Equal(k.PublicKey(), want) {
			t.Errorf("len %d: public key differs from circl's hpke.KEM_XWING", n)
		}
		seed := sha3.SumSHAKE256(ikm, 32)
		sk, pk := xwing.DeriveKeyPairPacked(seed)
		if !bytes.Equal(k.Bytes(), sk) || !bytes.Equal(k.PublicKey(), pk) {
			t.Errorf("len %d: key differs from xwing.DeriveKeyPairPacked(SHAKE256(ikm, 32))", n)
		}
	}
	a, _ := cs.DeriveKeyPair(make([]byte, 64))
	b, _ := MLS_256_XWING_AES256GCM_SHA512_Ed25519.DeriveKeyPair(make([]byte, 64))
	if !bytes.Equal(a.PublicKey(), b.PublicKey()) {
		t.Error("the two X-Wing suites derive different keys from the same ikm")
	}
}

// The sizes MLS sees: Nh = 64 (SHA-512), and X-Wing's Npk = 1216,
// Nenc = 1120, Nsk = 32 (draft-connolly-cfrg-xwing-kem, IANA
// Considerations), and a 64-byte encapsulation seed.
func TestXWingSizes(t *testing.T) {
	for _, cs := range xwingSuites {
		k, err := cs.GenerateHPKEKey(seeded(3))
		if err != nil {
			t.Fatal(err)
		}
		kemOutput, ct, err := cs.EncryptWithLabel(k.PublicKey(), "UpdatePathNode", nil, make([]byte, cs.Nh()), seeded(4))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			what      string
			got, want int
		}{
			{"Nh", cs.Nh(), 64},
			{"Nk", cs.Nk(), 32},
			{"Nn", cs.Nn(), 12},
			{"public key", len(k.PublicKey()), 1216},
			{"private key", len(k.Bytes()), 32},
			{"kem_output", len(kemOutput), 1120},
			{"ciphertext", len(ct), 64 + 16},
			{"encryption seed", cs.EncryptSeedSize(), 64},
		} {
			if c.got != c.want {
				t.Errorf("%v: %s = %d, want %d", cs, c.what, c.got, c.want)
			}
		}
	}
}

func TestXWingRejectsMalformedInput(t *testing.T) {
	cs := MLS_256_XWING_AES256GCM_SHA512_Ed25519
	k, err := cs.GenerateHPKEKey(seeded(5))
	if err != nil {
		t.Fatal(err)
	}
	// An ML-KEM-768 encapsulation key whose coefficients are not reduced
	// mod q fails FIPS 203's check.
	if err := cs.ValidateHPKEPublicKey(bytes.Repeat([]byte{0xff}, 1216)); !errors.Is(err, ErrInvalidPublicKey) {
		t.Errorf("unreduced public key: err = %v, want ErrInvalidPublicKey", err)
	}
	if err := cs.ValidateHPKEPublicKey(k.PublicKey()[:1215]); !errors.Is(err, ErrInvalidPublicKey) {
		t.Errorf("short public key: err = %v, want ErrInvalidPublicKey", err)
	}
	if _, err := cs.ParseHPKEPrivateKey(make([]byte, 31)); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Errorf("31-byte private key: err = %v, want ErrInvalidPrivateKey", err)
	}
	kemOutput, ct, err := cs.EncryptWithLabel(k.PublicKey(), "Test", nil, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"short":   kemOutput[:len(kemOutput)-1],
		"long":    append(append([]byte(nil), kemOutput...), 0),
		"flipped": append([]byte{kemOutput[0] ^ 1}, kemOutput[1:]...),
		"empty":   nil,
	} {
		if _, err := cs.DecryptWithLabel(k, "Test", nil, bad, ct); !errors.Is(err, ErrDecryption) {
			t.Errorf("%s kem_output: err = %v, want ErrDecryption", name, err)
		}
	}
	other := MLS_256_XWING_CHACHA20POLY1305_SHA512_Ed25519
	if _, err := other.DecryptWithLabel(k, "Test", nil, kemOutput, ct); !errors.Is(err, ErrInvalidPrivateKey) {
		t.Errorf("key of the other X-Wing suite: err = %v, want ErrInvalidPrivateKey", err)
	}
}

func TestXWingExternalInit(t *testing.T) {
	for _, cs := range xwingSuites {
		k, err := cs.DeriveKeyPair(bytes.Repeat([]byte{7}, cs.Nh()))
		if err != nil {
			t.Fatal(err)
		}
		kemOutput, joiner, err := cs.ExternalInit(k.PublicKey(), nil)
		if err != nil {
			t.Fatal(err)
		}
		group, err := cs.ExternalInitSecret(k, kemOutput)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(joiner, group) || len(group) != cs.Nh() {
			t.Errorf("%v: init_secret %x (joiner), %x (group)", cs, joiner, group)
		}
	}
}

// ValidateHPKEPublicKey checks X-Wing keys without circl's decoder; it must
// accept exactly what circl's UnmarshalBinaryPublicKey accepts.
func TestXWingPublicKeyCheckMatchesCircl(t *testing.T) {
	cs := MLS_256_XWING_AES256GCM_SHA512_Ed25519
	k, err := cs.GenerateHPKEKey(seeded(6))
	if err != nil {
		t.Fatal(err)
	}
	valid := k.PublicKey()
	setCoefficient := func(i int, c uint16) []byte { // coefficient i of t̂ := c
		b := append([]byte(nil), valid...)
		j := i / 2 * 3
		if i%2 == 0 {
			b[j], b[j+1] = byte(c), b[j+1]&0xf0|byte(c>>8)
		} else {
			b[j+1], b[j+2] = b[j+1]&0x0f|byte(c<<4), byte(c>>4)
		}
		return b
	}
	cases := map[string][]byte{
		"valid":     valid,
		"all zero":  make([]byte, 1216),
		"all 0xff":  bytes.Repeat([]byte{0xff}, 1216),
		"short":     valid[:1215],
		"long":      append(append([]byte(nil), valid...), 0),
		"rho 0xff":  append(append(append([]byte(nil), valid[:1152]...), bytes.Repeat([]byte{0xff}, 32)...), valid[1184:]...),
		"x25519 ff": append(append([]byte(nil), valid[:1184]...), bytes.Repeat([]byte{0xff}, 32)...),
	}
	for _, i := range []int{0, 1, 2, 3, 255, 256, 767} {
		for _, c := range []uint16{0, 3328, 3329, 4095} {
			pub := setCoefficient(i, c)
			cases[fmt.Sprintf("coefficient %d = %d", i, c)] = pub
			if err := cs.ValidateHPKEPublicKey(pub); (err == nil) != (c < 3329) {
				t.Errorf("coefficient %d = %d: err = %v", i, c, err)
			}
		}
	}
	for name, pub := range cases {
		_, circlErr := xwing.Scheme().UnmarshalBinaryPublicKey(pub)
		err := cs.ValidateHPKEPublicKey(pub)
		if (err == nil) != (circlErr == nil) {
			t.Errorf("%s: ValidateHPKEPublicKey = %v, circl = %v", name, err, circlErr)
		}
		if err != nil && !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("%s: err = %v, want ErrInvalidPublicKey", name, err)
		}
	}
}
