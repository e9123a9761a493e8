package mls_test

import (
	"bytes"
	"testing"

	"golang.org/x/crypto/cryptobyte"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/framing"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

func TestVectorsMessageProtection(t *testing.T) {
	type vector struct {
		CipherSuite             suite.CipherSuite `json:"cipher_suite"`
		GroupID                 hexBytes          `json:"group_id"`
		Epoch                   uint64            `json:"epoch"`
		TreeHash                hexBytes          `json:"tree_hash"`
		ConfirmedTranscriptHash hexBytes          `json:"confirmed_transcript_hash"`
		SignaturePriv           hexBytes          `json:"signature_priv"`
		SignaturePub            hexBytes          `json:"signature_pub"`
		EncryptionSecret        hexBytes          `json:"encryption_secret"`
		SenderDataSecret        hexBytes          `json:"sender_data_secret"`
		MembershipKey           hexBytes          `json:"membership_key"`
		Proposal                hexBytes          `json:"proposal"`
		ProposalPub             hexBytes          `json:"proposal_pub"`
		ProposalPriv            hexBytes          `json:"proposal_priv"`
		Commit                  hexBytes          `json:"commit"`
		CommitPub               hexBytes          `json:"commit_pub"`
		CommitPriv              hexBytes          `json:"commit_priv"`
		Application             hexBytes          `json:"application"`
		ApplicationPriv         hexBytes          `json:"application_priv"`
	}
	forEachVector(t, "message-protection.json", func(t *testing.T, v *vector) {
		cs := v.CipherSuite
		gc := codec.MustMarshal(&wire.GroupContext{
			Version: wire.MLS10, CipherSuite: cs, GroupID: v.GroupID, Epoch: v.Epoch,
			TreeHash: v.TreeHash, ConfirmedTranscriptHash: v.ConfirmedTranscriptHash,
		})
		signer, err := cs.ParseSignaturePrivateKey(v.SignaturePriv)
		if err != nil {
			t.Fatal(err)
		}
		newKeys := func() *framing.EpochKeys {
			return &framing.EpochKeys{
				Suite:            cs,
				SenderDataSecret: v.SenderDataSecret,
				Tree:             secrettree.New(cs, v.EncryptionSecret, 2, secrettree.DefaultConfig),
			}
		}
		// encodeContent gives the wire encoding of the raw value carried by
		// content, to compare with the vector's raw proposal/commit/app data.
		encodeContent := func(c *wire.FramedContent) []byte {
			var b cryptobyte.Builder
			switch c.ContentType {
			case wire.ContentApplication:
				return c.ApplicationData
			case wire.ContentProposal:
				wire.MarshalProposal(&b, c.Proposal)
			case wire.ContentCommit:
				c.Commit.MarshalMLS(&b)
			}
			return b.BytesOrPanic()
		}
		unprotectPublic := func(t *testing.T, msg []byte) *wire.FramedContent {
			t.Helper()
			var m wire.MLSMessage
			if err := codec.Unmarshal(msg, &m); err != nil {
				t.Fatalf("decoding PublicMessage: %v", err)
			}
			if m.PublicMessage == nil {
				t.Fatalf("wire format %d, want public_message", m.WireFormat)
			}
			if err := framing.VerifyMembershipTag(cs, m.PublicMessage, v.MembershipKey, gc); err != nil {
				t.Fatalf("membership tag: %v", err)
			}
			if err := framing.VerifySignature(cs, v.SignaturePub, framing.AuthenticatedContentOf(m.PublicMessage), gc); err != nil {
				t.Fatalf("signature: %v", err)
			}
			return &m.PublicMessage.Content
		}
		unprotectPrivate := func(t *testing.T, keys *framing.EpochKeys, msg []byte) *wire.FramedContent {
			t.Helper()
			var m wire.MLSMessage
			if err := codec.Unmarshal(msg, &m); err != nil {
				t.Fatalf("decoding PrivateMessage: %v", err)
			}
			if m.PrivateMessage == nil {
				t.Fatalf("wire format %d, want private_message", m.WireFormat)
			}
			ac, err := framing.DecryptPrivateMessage(keys, m.PrivateMessage, nil, nil)
			if err != nil {
				t.Fatalf("decrypting: %v", err)
			}
			if err := framing.VerifySignature(cs, v.SignaturePub, ac, gc); err != nil {
				t.Fatalf("signature: %v", err)
			}
			return &ac.Content
		}
		newContent := func(ct wire.ContentType, raw []byte) *wire.FramedContent {
			c := &wire.FramedContent{GroupID: v.GroupID, Epoch: v.Epoch, Sender: wire.MemberSender(1), ContentType: ct}
			s := cryptobyte.String(raw)
			switch ct {
			case wire.ContentApplication:
				c.ApplicationData = raw
			case wire.ContentProposal:
				if !wire.ReadProposal(&s, &c.Proposal) || !s.Empty() {
					t.Fatalf("decoding proposal")
				}
			case wire.ContentCommit:
				c.Commit = new(wire.Commit)
				if !c.Commit.UnmarshalMLS(&s) || !s.Empty() {
					t.Fatalf("decoding commit")
				}
			}
			return c
		}
		sign := func(t *testing.T, wf wire.WireFormat, c *wire.FramedContent) *wire.FramedContentAuthData {
			t.Helper()
			sig, err := framing.Sign(cs, signer, wf, c, gc, nil)
			if err != nil {
				t.Fatal(err)
			}
			auth := &wire.FramedContentAuthData{Signature: sig}
			if c.ContentType == wire.ContentCommit {
				auth.ConfirmationTag = bytes.Repeat([]byte{0xa5}, cs.Nh())
			}
			return auth
		}

		cases := []struct {
			name     string
			ct       wire.ContentType
			raw      []byte
			pub, prv []byte
		}{
			{"proposal", wire.ContentProposal, v.Proposal, v.ProposalPub, v.ProposalPriv},
			{"commit", wire.ContentCommit, v.Commit, v.CommitPub, v.CommitPriv},
			{"application", wire.ContentApplication, v.Application, nil, v.ApplicationPriv},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if c.pub != nil {
					got := unprotectPublic(t, c.pub)
					checkBytes(t, "public content", encodeContent(got), c.raw)
				}
				content := newContent(c.ct, c.raw)
				pm, err := framing.NewPublicMessage(cs, content, sign(t, wire.WireFormatPublicMessage, content), v.MembershipKey, gc)
				if c.ct == wire.ContentApplication {
					if err == nil {
						t.Errorf("application data protected as a PublicMessage")
					}
				} else {
					if err != nil {
						t.Fatal(err)
					}
					got := unprotectPublic(t, codec.MustMarshal(wire.NewMLSMessage(pm)))
					checkBytes(t, "public round trip", encodeContent(got), c.raw)
				}

				got := unprotectPrivate(t, newKeys(), c.prv)
				checkBytes(t, "private content", encodeContent(got), c.raw)

				keys := newKeys()
				priv, err := framing.EncryptPrivateMessage(keys, content, sign(t, wire.WireFormatPrivateMessage, content), framing.PadTo(32), nil)
				if err != nil {
					t.Fatal(err)
				}
				got = unprotectPrivate(t, newKeys(), codec.MustMarshal(wire.NewMLSMessage(priv)))
				checkBytes(t, "private round trip", encodeContent(got), c.raw)
			})
		}
	})
}

// roundTrip decodes want into v and checks that encoding v gives want back.
func roundTrip(t *testing.T, name string, want []byte, v interface {
	codec.Marshaler
	codec.Unmarshaler
}) {
	t.Helper()
	if err := codec.Unmarshal(want, v); err != nil {
		t.Errorf("%s: decoding: %v", name, err)
		return
	}
	got, err := codec.Marshal(v)
	if err != nil {
		t.Errorf("%s: encoding: %v", name, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: re-encoding differs:\n got %x\nwant %x", name, got, want)
	}
}

func TestVectorsMessages(t *testing.T) {
	type vector struct {
		MLSWelcome                     hexBytes `json:"mls_welcome"`
		MLSGroupInfo                   hexBytes `json:"mls_group_info"`
		MLSKeyPackage                  hexBytes `json:"mls_key_package"`
		RatchetTree                    hexBytes `json:"ratchet_tree"`
		GroupSecrets                   hexBytes `json:"group_secrets"`
		AddProposal                    hexBytes `json:"add_proposal"`
		UpdateProposal                 hexBytes `json:"update_proposal"`
		RemoveProposal                 hexBytes `json:"remove_proposal"`
		PreSharedKeyProposal           hexBytes `json:"pre_shared_key_proposal"`
		ReInitProposal                 hexBytes `json:"re_init_proposal"`
		ExternalInitProposal           hexBytes `json:"external_init_proposal"`
		GroupContextExtensionsProposal hexBytes `json:"group_context_extensions_proposal"`
		Commit                         hexBytes `json:"commit"`
		PublicMessageApplication       hexBytes `json:"public_message_application"`
		PublicMessageProposal          hexBytes `json:"public_message_proposal"`
		PublicMessageCommit            hexBytes `json:"public_message_commit"`
		PrivateMessage                 hexBytes `json:"private_message"`
	}
	forEachVector(t, "messages.json", func(t *testing.T, v *vector) {
		mlsMessage := func(name string, data []byte, wf wire.WireFormat) {
			var m wire.MLSMessage
			roundTrip(t, name, data, &m)
			if m.WireFormat != wf {
				t.Errorf("%s: wire format %d, want %d", name, m.WireFormat, wf)
			}
		}
		mlsMessage("mls_welcome", v.MLSWelcome, wire.WireFormatWelcome)
		mlsMessage("mls_group_info", v.MLSGroupInfo, wire.WireFormatGroupInfo)
		mlsMessage("mls_key_package", v.MLSKeyPackage, wire.WireFormatKeyPackage)
		mlsMessage("public_message_application", v.PublicMessageApplication, wire.WireFormatPublicMessage)
		mlsMessage("public_message_proposal", v.PublicMessageProposal, wire.WireFormatPublicMessage)
		mlsMessage("public_message_commit", v.PublicMessageCommit, wire.WireFormatPublicMessage)
		mlsMessage("private_message", v.PrivateMessage, wire.WireFormatPrivateMessage)
		roundTrip(t, "ratchet_tree", v.RatchetTree, new(wire.RatchetTree))
		roundTrip(t, "group_secrets", v.GroupSecrets, new(wire.GroupSecrets))
		roundTrip(t, "add_proposal", v.AddProposal, new(wire.Add))
		roundTrip(t, "update_proposal", v.UpdateProposal, new(wire.Update))
		roundTrip(t, "remove_proposal", v.RemoveProposal, new(wire.Remove))
		roundTrip(t, "pre_shared_key_proposal", v.PreSharedKeyProposal, new(wire.PreSharedKey))
		roundTrip(t, "re_init_proposal", v.ReInitProposal, new(wire.ReInit))
		roundTrip(t, "external_init_proposal", v.ExternalInitProposal, new(wire.ExternalInit))
		roundTrip(t, "group_context_extensions_proposal", v.GroupContextExtensionsProposal, new(wire.GroupContextExtensions))
		roundTrip(t, "commit", v.Commit, new(wire.Commit))
	})
}
