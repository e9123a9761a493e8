package suite

import (
	"bytes"
	"crypto/hkdf"
	"math/rand/v2"
	"testing"
)

// TestExpandBlockMatchesHKDF checks the one-block expansion against
// crypto/hkdf for every suite's hash, over random keys, infos and output
// lengths on both sides of the limits it handles (where it must decline).
func TestExpandBlockMatchesHKDF(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	handled := 0
	for _, cs := range []CipherSuite{1, 2, 3, 4, 5, 6, 7} {
		p := cs.p()
		for i := range 2000 {
			prk := make([]byte, rng.IntN(2*p.hash.Size()+80))
			info := make([]byte, rng.IntN(maxBlockInfo+40))
			for _, b := range [][]byte{prk, info} {
				for j := range b {
					b[j] = byte(rng.Uint32())
				}
			}
			length := 1 + rng.IntN(p.hash.Size()+8)
			got, err := cs.Expand(prk, info, length)
			if err != nil {
				t.Fatalf("suite %d, case %d: %v", cs, i, err)
			}
			want, err := hkdf.Expand(p.newHash, prk, string(info), length)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("suite %d: Expand(prk %d bytes, info %d bytes, %d) differs from HKDF-Expand", cs, len(prk), len(info), length)
			}
			if _, ok := expandBlock(p.hash, prk, info, length); ok {
				handled++
			}
		}
	}
	if handled < 5000 {
		t.Errorf("the one-block expansion handled %d of 14000 cases; the test does not exercise it", handled)
	}
}

func BenchmarkExpandWithLabel(b *testing.B) {
	secret := make([]byte, 32)
	for b.Loop() {
		if _, err := CipherSuite(1).DeriveTreeSecret(secret, "secret", 5, 32); err != nil {
			b.Fatal(err)
		}
	}
}
