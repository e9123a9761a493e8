package suite

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cloudflare/circl/hpke"
)

// seeded returns a deterministic reader for reproducible keys.
func seeded(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

func TestEverySuiteSignsAndVerifies(t *testing.T) {
	for _, cs := range All {
		t.Run(cs.String(), func(t *testing.T) {
			k, err := cs.GenerateSignatureKey(seeded(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.ValidateSignaturePublicKey(k.PublicKey()); err != nil {
				t.Fatalf("own public key invalid: %v", err)
			}
			sig, err := cs.SignWithLabel(k, "Test", []byte("content"), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.VerifyWithLabel(k.PublicKey(), "Test", []byte("content"), sig); err != nil {
				t.Errorf("verify: %v", err)
			}
			if err := cs.VerifyWithLabel(k.PublicKey(), "Test", []byte("Content"), sig); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("verify of other content: err = %v, want ErrInvalidSignature", err)
			}
			k2, err := cs.ParseSignaturePrivateKey(k.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k2.PublicKey(), k.PublicKey()) {
				t.Error("private key does not round-trip through Bytes")
			}
			again, _ := cs.GenerateSignatureKey(seeded(1))
			if !bytes.Equal(again.PublicKey(), k.PublicKey()) {
				t.Error("key generation is not deterministic for a seeded reader")
			}
		})
	}
}

func TestEverySuiteEncryptsAndDecrypts(t *testing.T) {
	for _, cs := range All {
		t.Run(cs.String(), func(t *testing.T) {
			k, err := cs.GenerateHPKEKey(seeded(2))
			if err != nil {
				t.Fatal(err)
			}
			if err := cs.ValidateHPKEPublicKey(k.PublicKey()); err != nil {
				t.Fatal(err)
			}
			kem, ct, err := cs.EncryptWithLabel(k.PublicKey(), "Test", []byte("ctx"), []byte("secret"), nil)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := cs.DecryptWithLabel(k, "Test", []byte("ctx"), kem, ct)
			if err != nil || !bytes.Equal(pt, []byte("secret")) {
				t.Fatalf("decrypt = %q, %v", pt, err)
			}
			if _, err := cs.DecryptWithLabel(k, "Test", []byte("other"), kem, ct); !errors.Is(err, ErrDecryption) {
				t.Errorf("decrypt with other context: err = %v, want ErrDecryption", err)
			}
			k2, err := cs.ParseHPKEPrivateKey(k.Bytes())
			if err != nil || !bytes.Equal(k2.PublicKey(), k.PublicKey()) {
				t.Errorf("private key does not round-trip: %v", err)
			}
		})
	}
}

// For X25519 with a seed of exactly Nsk bytes, circl's DeriveKeyPair and
// ours must agree (circl refuses other seed lengths, which MLS needs).
func TestDeriveKeyPairMatchesCircl(t *testing.T) {
	for _, cs := range []CipherSuite{1, 2, 3, 7} {
		p := cs.p()
		scheme := p.kem.Scheme()
		for i := range 8 {
			seed := bytes.Repeat([]byte{byte(i + 1)}, scheme.SeedSize())
			if len(seed) != cs.Nh() {
				continue
			}
			pub, _ := scheme.DeriveKeyPair(seed)
			want, _ := pub.MarshalBinary()
			k, err := cs.DeriveKeyPair(seed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.PublicKey(), want) {
				t.Errorf("%v seed %d: public key %x, circl %x", cs, i, k.PublicKey(), want)
			}
		}
	}
	_ = hpke.KEM_X25519_HKDF_SHA256
}

func TestPrivateKeysRedactThemselves(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	sk, _ := cs.GenerateSignatureKey(nil)
	hk, _ := cs.GenerateHPKEKey(nil)
	for _, v := range []any{sk, hk} {
		for _, format := range []string{"%v", "%s", "%+v", "%#v", "%x"} {
			out := fmt.Sprintf(format, v)
			if !bytes.Contains([]byte(out), []byte("redacted")) {
				t.Errorf("Sprintf(%q, %T) = %q, want redacted", format, v, out)
			}
		}
	}
}

func TestInvalidKeysAreRejected(t *testing.T) {
	for _, cs := range All {
		if err := cs.ValidateHPKEPublicKey([]byte{1, 2, 3}); !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("%v: short HPKE key: err = %v", cs, err)
		}
		if err := cs.ValidateSignaturePublicKey([]byte{1, 2, 3}); !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("%v: short signature key: err = %v", cs, err)
		}
		if err := cs.VerifyWithLabel([]byte{1}, "x", nil, nil); err == nil {
			t.Errorf("%v: verify with a garbage key succeeded", cs)
		}
	}
	if err := CipherSuite(8).Check(); !errors.Is(err, ErrUnsupportedSuite) {
		t.Errorf("suite 8: err = %v", err)
	}
}

func TestExpandWithLabelRejectsOversizeOutput(t *testing.T) {
	cs := MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519
	if _, err := cs.ExpandWithLabel(make([]byte, 32), "x", nil, 255*32+1); !errors.Is(err, ErrOutputLength) {
		t.Errorf("err = %v, want ErrOutputLength", err)
	}
}
