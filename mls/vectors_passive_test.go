package mls_test

import (
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/group"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// vectorPSKs serves the external PSKs of a passive-client vector.
type vectorPSKs map[string][]byte

func (p vectorPSKs) ExternalPSK(id []byte) ([]byte, bool) { v, ok := p[string(id)]; return v, ok }
func (p vectorPSKs) ResumptionPSK([]byte, uint64) ([]byte, bool) {
	return nil, false
}

func TestVectorsPassiveClient(t *testing.T) {
	type epoch struct {
		Proposals          []hexBytes `json:"proposals"`
		Commit             hexBytes   `json:"commit"`
		EpochAuthenticator hexBytes   `json:"epoch_authenticator"`
	}
	type vector struct {
		CipherSuite  suite.CipherSuite `json:"cipher_suite"`
		ExternalPSKs []struct {
			PSKID hexBytes `json:"psk_id"`
			PSK   hexBytes `json:"psk"`
		} `json:"external_psks"`
		KeyPackage                hexBytes `json:"key_package"`
		SignaturePriv             hexBytes `json:"signature_priv"`
		EncryptionPriv            hexBytes `json:"encryption_priv"`
		InitPriv                  hexBytes `json:"init_priv"`
		Welcome                   hexBytes `json:"welcome"`
		RatchetTree               hexBytes `json:"ratchet_tree"`
		InitialEpochAuthenticator hexBytes `json:"initial_epoch_authenticator"`
		Epochs                    []epoch  `json:"epochs"`
	}
	for _, file := range vectorFiles(t, "passive-client") {
		t.Run(file, func(t *testing.T) {
			forEachVector(t, file, func(t *testing.T, v *vector) {
				cs := v.CipherSuite
				var kpMsg, wMsg wire.MLSMessage
				if err := codec.Unmarshal(v.KeyPackage, &kpMsg); err != nil || kpMsg.KeyPackage == nil {
					t.Fatalf("decoding key package: %v", err)
				}
				if err := codec.Unmarshal(v.Welcome, &wMsg); err != nil || wMsg.Welcome == nil {
					t.Fatalf("decoding welcome: %v", err)
				}
				bundle := &group.KeyPackageBundle{KeyPackage: kpMsg.KeyPackage}
				var err error
				if bundle.InitKey, err = cs.ParseHPKEPrivateKey(v.InitPriv); err != nil {
					t.Fatal(err)
				}
				if bundle.EncryptionKey, err = cs.ParseHPKEPrivateKey(v.EncryptionPriv); err != nil {
					t.Fatal(err)
				}
				if bundle.Signer, err = cs.ParseSignaturePrivateKey(v.SignaturePriv); err != nil {
					t.Fatal(err)
				}
				checkBytes(t, "init key", bundle.InitKey.PublicKey(), kpMsg.KeyPackage.InitKey)
				checkBytes(t, "encryption key", bundle.EncryptionKey.PublicKey(), kpMsg.KeyPackage.LeafNode.EncryptionKey)
				checkBytes(t, "signature key", bundle.Signer.PublicKey(), kpMsg.KeyPackage.LeafNode.SignatureKey)
				psks := vectorPSKs{}
				for _, p := range v.ExternalPSKs {
					psks[string(p.PSKID)] = p.PSK
				}
				cfg := &group.Config{PSKs: psks, SkipLifetimeCheck: true}
				var opts group.JoinOptions
				if v.RatchetTree != nil {
					if err := codec.Unmarshal(v.RatchetTree, &opts.Tree); err != nil {
						t.Fatalf("decoding ratchet tree: %v", err)
					}
				}
				state, err := group.JoinWelcome(cfg, wMsg.Welcome, bundle, opts)
				if err != nil {
					t.Fatalf("joining: %v", err)
				}
				checkBytes(t, "initial epoch authenticator", state.EpochAuthenticator(), v.InitialEpochAuthenticator)
				for i, e := range v.Epochs {
					for j, p := range e.Proposals {
						if _, err := state.ProcessBytes(p); err != nil {
							t.Fatalf("epoch %d: proposal %d: %v", i, j, err)
						}
					}
					res, err := state.ProcessBytes(e.Commit)
					if err != nil {
						t.Fatalf("epoch %d: commit: %v", i, err)
					}
					if res.Commit == nil || res.Commit.State == nil {
						t.Fatalf("epoch %d: commit did not produce a new epoch", i)
					}
					state = res.Commit.State
					checkBytes(t, "epoch authenticator", state.EpochAuthenticator(), e.EpochAuthenticator)
					if t.Failed() {
						t.Fatalf("epoch %d", i)
					}
				}
			})
		})
	}
}
