package mls_test

import (
	"bytes"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

func TestVectorsWelcome(t *testing.T) {
	type vector struct {
		CipherSuite suite.CipherSuite `json:"cipher_suite"`
		InitPriv    hexBytes          `json:"init_priv"`
		SignerPub   hexBytes          `json:"signer_pub"`
		KeyPackage  hexBytes          `json:"key_package"`
		Welcome     hexBytes          `json:"welcome"`
	}
	forEachVector(t, "welcome.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		var kpMsg, wMsg wire.MLSMessage
		if err := codec.Unmarshal(v.KeyPackage, &kpMsg); err != nil || kpMsg.KeyPackage == nil {
			t.Fatalf("decoding key package: %v", err)
		}
		if err := codec.Unmarshal(v.Welcome, &wMsg); err != nil || wMsg.Welcome == nil {
			t.Fatalf("decoding welcome: %v", err)
		}
		ref, err := kpMsg.KeyPackage.Ref()
		if err != nil {
			t.Fatal(err)
		}
		w := wMsg.Welcome
		var egs *wire.EncryptedGroupSecrets
		for i := range w.Secrets {
			if bytes.Equal(w.Secrets[i].NewMember, ref) {
				egs = &w.Secrets[i]
			}
		}
		if egs == nil {
			t.Fatalf("no entry for key package %x", ref)
		}
		initKey, err := cs.ParseHPKEPrivateKey(v.InitPriv)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := cs.DecryptWithLabel(initKey, "Welcome", w.EncryptedGroupInfo, egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
		if err != nil {
			t.Fatalf("decrypting group secrets: %v", err)
		}
		var gs wire.GroupSecrets
		if err := codec.Unmarshal(plain, &gs); err != nil {
			t.Fatalf("decoding group secrets: %v", err)
		}
		psk := keyschedule.Zero(cs)
		key, nonce, err := keyschedule.WelcomeKeyNonce(cs, keyschedule.WelcomeSecret(cs, gs.JoinerSecret, psk))
		if err != nil {
			t.Fatal(err)
		}
		giBytes, err := cs.Open(nil, key, nonce, nil, w.EncryptedGroupInfo)
		if err != nil {
			t.Fatalf("decrypting group info: %v", err)
		}
		var gi wire.GroupInfo
		if err := codec.Unmarshal(giBytes, &gi); err != nil {
			t.Fatalf("decoding group info: %v", err)
		}
		if err := gi.VerifySignature(v.SignerPub); err != nil {
			t.Errorf("group info signature: %v", err)
		}
		epoch := keyschedule.FromJoiner(cs, gs.JoinerSecret, psk, codec.MustMarshal(&gi.GroupContext))
		if err := framing.VerifyConfirmationTag(cs, epoch.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag); err != nil {
			t.Errorf("confirmation tag: %v", err)
		}
	})
}
