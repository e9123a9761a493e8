package suite

import (
	"bytes"
	"testing"
)

// FuzzHPKEKeys feeds every suite's HPKE key decoders and decryption
// arbitrary bytes: sel picks the suite in All. No input may panic; a
// public key is valid exactly when circl can decode it; a private key that
// parses must serialize to the same bytes and give a valid public key;
// decryption of bytes not made by EncryptWithLabel fails.
func FuzzHPKEKeys(f *testing.F) {
	keys := make([]*HPKEPrivateKey, len(All))
	for i, cs := range All {
		k, err := cs.GenerateHPKEKey(seeded(uint64(10 + i)))
		if err != nil {
			f.Fatal(err)
		}
		keys[i] = k
		kemOutput, ct, err := cs.EncryptWithLabel(k.PublicKey(), "Fuzz", nil, make([]byte, cs.Nh()), seeded(uint64(20+i)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), k.Bytes(), kemOutput, ct)
		f.Add(uint8(i), k.PublicKey(), kemOutput[:len(kemOutput)/2], ct[1:])
	}
	f.Fuzz(func(t *testing.T, sel uint8, key, kemOutput, ct []byte) {
		i := int(sel) % len(All)
		cs := All[i]
		if k, err := cs.ParseHPKEPrivateKey(key); err == nil {
			if len(key) == cs.p().nsk() && !bytes.Equal(k.Bytes(), key) {
				t.Fatalf("%v: private key %x serializes as %x", cs, key, k.Bytes())
			}
			if err := cs.ValidateHPKEPublicKey(k.PublicKey()); err != nil {
				t.Fatalf("%v: public key of a parsed private key is invalid: %v", cs, err)
			}
		}
		err := cs.ValidateHPKEPublicKey(key)
		if _, circlErr := cs.p().kem.Scheme().UnmarshalBinaryPublicKey(key); (err == nil) != (circlErr == nil) {
			t.Fatalf("%v: ValidateHPKEPublicKey = %v, circl's decoder = %v", cs, err, circlErr)
		}
		if err == nil {
			_, _, _ = cs.EncryptWithLabel(key, "Fuzz", nil, ct, seeded(1))
		}
		if pt, err := cs.DecryptWithLabel(keys[i], "Fuzz", nil, kemOutput, ct); err == nil && !bytes.Equal(pt, make([]byte, cs.Nh())) {
			t.Fatalf("%v: forged ciphertext decrypted to %x", cs, pt)
		}
	})
}
