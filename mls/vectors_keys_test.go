package mls_test

import (
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/keyschedule"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/treemath"
	"github.com/parley-p2p/parley/mls/wire"
)

func TestVectorsSecretTree(t *testing.T) {
	type generation struct {
		Generation       uint32   `json:"generation"`
		HandshakeKey     hexBytes `json:"handshake_key"`
		HandshakeNonce   hexBytes `json:"handshake_nonce"`
		ApplicationKey   hexBytes `json:"application_key"`
		ApplicationNonce hexBytes `json:"application_nonce"`
	}
	type vector struct {
		CipherSuite suite.CipherSuite `json:"cipher_suite"`
		SenderData  struct {
			SenderDataSecret hexBytes `json:"sender_data_secret"`
			Ciphertext       hexBytes `json:"ciphertext"`
			Key              hexBytes `json:"key"`
			Nonce            hexBytes `json:"nonce"`
		} `json:"sender_data"`
		EncryptionSecret hexBytes       `json:"encryption_secret"`
		Leaves           [][]generation `json:"leaves"`
	}
	forEachVector(t, "secret-tree.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		key, nonce, err := framing.SenderDataKeyNonce(cs, v.SenderData.SenderDataSecret, v.SenderData.Ciphertext)
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "sender data key", key, v.SenderData.Key)
		checkBytes(t, "sender data nonce", nonce, v.SenderData.Nonce)

		tree := secrettree.New(cs, v.EncryptionSecret, uint32(len(v.Leaves)), secrettree.DefaultConfig)
		for i, gens := range v.Leaves {
			for _, g := range gens {
				for _, typ := range []secrettree.RatchetType{secrettree.Handshake, secrettree.Application} {
					wantKey, wantNonce := g.HandshakeKey, g.HandshakeNonce
					if typ == secrettree.Application {
						wantKey, wantNonce = g.ApplicationKey, g.ApplicationNonce
					}
					err := tree.Open(treemath.LeafIndex(i), typ, g.Generation, func(key, nonce []byte) error {
						checkBytes(t, "ratchet key", key, wantKey)
						checkBytes(t, "ratchet nonce", nonce, wantNonce)
						return nil
					})
					if err != nil {
						t.Fatalf("leaf %d generation %d: %v", i, g.Generation, err)
					}
				}
			}
		}
	})
}

func TestVectorsKeySchedule(t *testing.T) {
	type epoch struct {
		TreeHash                hexBytes `json:"tree_hash"`
		CommitSecret            hexBytes `json:"commit_secret"`
		PSKSecret               hexBytes `json:"psk_secret"`
		ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
		GroupContext            hexBytes `json:"group_context"`
		JoinerSecret            hexBytes `json:"joiner_secret"`
		WelcomeSecret           hexBytes `json:"welcome_secret"`
		InitSecret              hexBytes `json:"init_secret"`
		SenderDataSecret        hexBytes `json:"sender_data_secret"`
		EncryptionSecret        hexBytes `json:"encryption_secret"`
		ExporterSecret          hexBytes `json:"exporter_secret"`
		EpochAuthenticator      hexBytes `json:"epoch_authenticator"`
		ExternalSecret          hexBytes `json:"external_secret"`
		ConfirmationKey         hexBytes `json:"confirmation_key"`
		MembershipKey           hexBytes `json:"membership_key"`
		ResumptionPSK           hexBytes `json:"resumption_psk"`
		ExternalPub             hexBytes `json:"external_pub"`
		Exporter                struct {
			Label   string   `json:"label"`
			Context hexBytes `json:"context"`
			Length  uint16   `json:"length"`
			Secret  hexBytes `json:"secret"`
		} `json:"exporter"`
	}
	type vector struct {
		CipherSuite       suite.CipherSuite `json:"cipher_suite"`
		GroupID           hexBytes          `json:"group_id"`
		InitialInitSecret hexBytes          `json:"initial_init_secret"`
		Epochs            []epoch           `json:"epochs"`
	}
	forEachVector(t, "key-schedule.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		initSecret := []byte(v.InitialInitSecret)
		for i, e := range v.Epochs {
			gc := wire.GroupContext{
				Version:                 wire.MLS10,
				CipherSuite:             cs,
				GroupID:                 v.GroupID,
				Epoch:                   uint64(i),
				TreeHash:                e.TreeHash,
				ConfirmedTranscriptHash: e.ConfirmedTranscriptHash,
			}
			gcBytes := codec.MustMarshal(&gc)
			checkBytes(t, "group context", gcBytes, e.GroupContext)
			ep := keyschedule.New(cs, initSecret, e.CommitSecret, e.PSKSecret, gcBytes)
			checkBytes(t, "joiner_secret", ep.JoinerSecret, e.JoinerSecret)
			checkBytes(t, "welcome_secret", ep.WelcomeSecret, e.WelcomeSecret)
			checkBytes(t, "init_secret", ep.InitSecret, e.InitSecret)
			checkBytes(t, "sender_data_secret", ep.SenderDataSecret, e.SenderDataSecret)
			checkBytes(t, "encryption_secret", ep.EncryptionSecret, e.EncryptionSecret)
			checkBytes(t, "exporter_secret", ep.ExporterSecret, e.ExporterSecret)
			checkBytes(t, "epoch_authenticator", ep.EpochAuthenticator, e.EpochAuthenticator)
			checkBytes(t, "external_secret", ep.ExternalSecret, e.ExternalSecret)
			checkBytes(t, "confirmation_key", ep.ConfirmationKey, e.ConfirmationKey)
			checkBytes(t, "membership_key", ep.MembershipKey, e.MembershipKey)
			checkBytes(t, "resumption_psk", ep.ResumptionPSK, e.ResumptionPSK)
			checkBytes(t, "welcome_secret (from joiner)", keyschedule.WelcomeSecret(cs, e.JoinerSecret, e.PSKSecret), e.WelcomeSecret)
			ext, err := ep.ExternalKey()
			if err != nil {
				t.Fatalf("epoch %d: ExternalKey: %v", i, err)
			}
			checkBytes(t, "external_pub", ext.PublicKey(), e.ExternalPub)
			exp, err := ep.Export(e.Exporter.Label, e.Exporter.Context, e.Exporter.Length)
			if err != nil {
				t.Fatalf("epoch %d: Export: %v", i, err)
			}
			checkBytes(t, "exporter", exp, e.Exporter.Secret)
			initSecret = ep.InitSecret
			if t.Failed() {
				t.Fatalf("epoch %d failed", i)
			}
		}
	})
}

func TestVectorsPSKSecret(t *testing.T) {
	type psk struct {
		PSKID    hexBytes `json:"psk_id"`
		PSK      hexBytes `json:"psk"`
		PSKNonce hexBytes `json:"psk_nonce"`
	}
	type vector struct {
		CipherSuite suite.CipherSuite `json:"cipher_suite"`
		PSKs        []psk             `json:"psks"`
		PSKSecret   hexBytes          `json:"psk_secret"`
	}
	forEachVector(t, "psk_secret.json", func(t *testing.T, v *vector) {
		var in []keyschedule.PSK
		for _, p := range v.PSKs {
			in = append(in, keyschedule.PSK{
				ID:     wire.PreSharedKeyID{Type: wire.PSKExternal, PSKID: p.PSKID, Nonce: p.PSKNonce},
				Secret: p.PSK,
			})
		}
		got, err := keyschedule.PSKSecret(v.CipherSuite, in)
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "psk_secret", got, v.PSKSecret)
	})
}

func TestVectorsTranscriptHashes(t *testing.T) {
	type vector struct {
		CipherSuite                  suite.CipherSuite `json:"cipher_suite"`
		ConfirmationKey              hexBytes          `json:"confirmation_key"`
		AuthenticatedContent         hexBytes          `json:"authenticated_content"`
		InterimTranscriptHashBefore  hexBytes          `json:"interim_transcript_hash_before"`
		ConfirmedTranscriptHashAfter hexBytes          `json:"confirmed_transcript_hash_after"`
		InterimTranscriptHashAfter   hexBytes          `json:"interim_transcript_hash_after"`
	}
	forEachVector(t, "transcript-hashes.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		var ac wire.AuthenticatedContent
		if err := codec.Unmarshal(v.AuthenticatedContent, &ac); err != nil {
			t.Fatalf("decoding AuthenticatedContent: %v", err)
		}
		if ac.Content.ContentType != wire.ContentCommit {
			t.Fatalf("content type %v, want commit", ac.Content.ContentType)
		}
		if err := framing.VerifyConfirmationTag(cs, v.ConfirmationKey, v.ConfirmedTranscriptHashAfter, ac.Auth.ConfirmationTag); err != nil {
			t.Errorf("confirmation tag: %v", err)
		}
		confirmed, err := framing.ConfirmedTranscriptHash(cs, v.InterimTranscriptHashBefore, &ac)
		if err != nil {
			t.Fatal(err)
		}
		checkBytes(t, "confirmed_transcript_hash_after", confirmed, v.ConfirmedTranscriptHashAfter)
		checkBytes(t, "interim_transcript_hash_after", framing.InterimTranscriptHash(cs, confirmed, ac.Auth.ConfirmationTag), v.InterimTranscriptHashAfter)
	})
}
