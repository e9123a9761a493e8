package mls_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// Benchmarks of the primitives, per cipher suite:
//
//	go test -run XXX -bench . -benchmem ./mls/
func forEachSuite(b *testing.B, f func(b *testing.B, cs suite.CipherSuite)) {
	for _, cs := range suite.All {
		b.Run(fmt.Sprintf("suite=%d", cs), func(b *testing.B) { f(b, cs) })
	}
}

func BenchmarkHPKE(b *testing.B) {
	forEachSuite(b, func(b *testing.B, cs suite.CipherSuite) {
		k, err := cs.GenerateHPKEKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		pt := make([]byte, cs.Nh()) // a path secret
		ctx := make([]byte, 128)    // a group context
		b.Run("seal", func(b *testing.B) {
			for b.Loop() {
				if _, _, err := cs.EncryptWithLabel(k.PublicKey(), "UpdatePathNode", ctx, pt, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
		kem, ct, _ := cs.EncryptWithLabel(k.PublicKey(), "UpdatePathNode", ctx, pt, nil)
		b.Run("open", func(b *testing.B) {
			for b.Loop() {
				if _, err := cs.DecryptWithLabel(k, "UpdatePathNode", ctx, kem, ct); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("derive-keypair", func(b *testing.B) {
			for b.Loop() {
				if _, err := cs.DeriveKeyPair(pt); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkSignature signs and verifies 256 bytes and 1 KiB (about what a
// protected 1 KiB application message signs); verify-repeated is
// VerifyWithLabelRepeated under a key it has seen before, as for a
// member's messages.
func BenchmarkSignature(b *testing.B) {
	forEachSuite(b, func(b *testing.B, cs suite.CipherSuite) {
		k, err := cs.GenerateSignatureKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, size := range []int{256, 1024} {
			suffix := ""
			if size != 256 {
				suffix = "-1KiB"
			}
			msg := make([]byte, size)
			b.Run("sign"+suffix, func(b *testing.B) {
				for b.Loop() {
					if _, err := cs.SignWithLabel(k, "FramedContentTBS", msg, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
			sig, _ := cs.SignWithLabel(k, "FramedContentTBS", msg, nil)
			b.Run("verify"+suffix, func(b *testing.B) {
				for b.Loop() {
					if err := cs.VerifyWithLabel(k.PublicKey(), "FramedContentTBS", msg, sig); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("verify-repeated"+suffix, func(b *testing.B) {
				for b.Loop() {
					if err := cs.VerifyWithLabelRepeated(k.PublicKey(), "FramedContentTBS", msg, sig); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	})
}

func BenchmarkKeyScheduleEpoch(b *testing.B) {
	forEachSuite(b, func(b *testing.B, cs suite.CipherSuite) {
		init, commit, psk := bytes.Repeat([]byte{1}, cs.Nh()), bytes.Repeat([]byte{2}, cs.Nh()), keyschedule.Zero(cs)
		gc := codec.MustMarshal(&wire.GroupContext{Version: wire.MLS10, CipherSuite: cs, GroupID: make([]byte, 16),
			TreeHash: make([]byte, cs.Nh()), ConfirmedTranscriptHash: make([]byte, cs.Nh())})
		for b.Loop() {
			e := keyschedule.New(cs, init, commit, psk, gc)
			e.Destroy()
		}
	})
}

func BenchmarkSecretTreeStep(b *testing.B) {
	forEachSuite(b, func(b *testing.B, cs suite.CipherSuite) {
		tree := secrettree.New(cs, bytes.Repeat([]byte{3}, cs.Nh()), 1024, secrettree.DefaultConfig)
		for b.Loop() {
			if _, err := tree.Next(5, secrettree.Application); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPrivateMessage protects and unprotects a 1 KiB application
// message: a signature plus encryption, and decryption plus verification.
func BenchmarkPrivateMessage(b *testing.B) {
	forEachSuite(b, func(b *testing.B, cs suite.CipherSuite) {
		signer, err := cs.GenerateSignatureKey(nil)
		if err != nil {
			b.Fatal(err)
		}
		gc := codec.MustMarshal(&wire.GroupContext{Version: wire.MLS10, CipherSuite: cs, GroupID: make([]byte, 16),
			TreeHash: make([]byte, cs.Nh()), ConfirmedTranscriptHash: make([]byte, cs.Nh())})
		secret := bytes.Repeat([]byte{4}, cs.Nh())
		cfg := secrettree.Config{OutOfOrderWindow: 0, MaxForwardDistance: 1 << 30}
		newKeys := func() *framing.EpochKeys {
			return &framing.EpochKeys{Suite: cs, SenderDataSecret: secret, Tree: secrettree.New(cs, secret, 8, cfg)}
		}
		content := &wire.FramedContent{GroupID: make([]byte, 16), Epoch: 9, Sender: wire.MemberSender(3),
			ContentType: wire.ContentApplication, ApplicationData: make([]byte, 1024)}
		protect := func(keys *framing.EpochKeys) []byte {
			sig, err := framing.Sign(cs, signer, wire.WireFormatPrivateMessage, content, gc, nil)
			if err != nil {
				b.Fatal(err)
			}
			pm, err := framing.EncryptPrivateMessage(keys, content, &wire.FramedContentAuthData{Signature: sig}, nil, nil)
			if err != nil {
				b.Fatal(err)
			}
			return codec.MustMarshal(wire.NewMLSMessage(pm))
		}
		b.Run("protect", func(b *testing.B) {
			keys := newKeys()
			for b.Loop() {
				protect(keys)
			}
		})
		b.Run("unprotect", func(b *testing.B) {
			sender := newKeys()
			msgs := make([][]byte, 0, 1024)
			receiver := newKeys()
			i := 0
			for b.Loop() {
				if i == len(msgs) {
					b.StopTimer()
					msgs, i = msgs[:0], 0
					for range cap(msgs) {
						msgs = append(msgs, protect(sender))
					}
					b.StartTimer()
				}
				var m wire.MLSMessage
				if err := codec.Unmarshal(msgs[i], &m); err != nil {
					b.Fatal(err)
				}
				i++
				ac, err := framing.DecryptPrivateMessage(receiver, m.PrivateMessage, nil, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := framing.VerifySignature(cs, signer.PublicKey(), ac, gc); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
