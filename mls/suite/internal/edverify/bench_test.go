package edverify

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkVerify compares a Key's verification with crypto/ed25519's on a
// 1 KiB message (the size of a protected application message's content),
// and gives the cost of preparing a Key.
func BenchmarkVerify(b *testing.B) {
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	msg := make([]byte, 1024)
	sig := ed25519.Sign(priv, msg)
	b.Run("crypto-ed25519", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(pub, msg, sig) {
				b.Fatal("rejected")
			}
		}
	})
	k, err := NewKey(pub)
	if err != nil {
		b.Fatal(err)
	}
	baseTable()
	b.Run("key", func(b *testing.B) {
		for b.Loop() {
			if !k.Verify(msg, sig) {
				b.Fatal("rejected")
			}
		}
	})
	b.Run("new-key", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewKey(pub); err != nil {
				b.Fatal(err)
			}
		}
	})
}
