package framing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/parley-p2p/parley/mls/codec"
	"github.com/parley-p2p/parley/mls/secrettree"
	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

const cs = suite.MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519

type fixture struct {
	signer  *suite.SignaturePrivateKey
	gc      []byte
	secret  []byte
	content *wire.FramedContent
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	signer, err := cs.GenerateSignatureKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{
		signer: signer,
		gc: codec.MustMarshal(&wire.GroupContext{Version: wire.MLS10, CipherSuite: cs, GroupID: []byte("g"),
			TreeHash: make([]byte, 32), ConfirmedTranscriptHash: make([]byte, 32)}),
		secret: bytes.Repeat([]byte{9}, 32),
		content: &wire.FramedContent{GroupID: []byte("g"), Epoch: 1, Sender: wire.MemberSender(0),
			ContentType: wire.ContentApplication, ApplicationData: []byte("hello")},
	}
}

func (f *fixture) keys() *EpochKeys {
	return &EpochKeys{Suite: cs, SenderDataSecret: f.secret, Tree: secrettree.New(cs, f.secret, 2, secrettree.DefaultConfig)}
}

func (f *fixture) encrypt(t *testing.T, keys *EpochKeys) *wire.PrivateMessage {
	t.Helper()
	sig, err := Sign(cs, f.signer, wire.WireFormatPrivateMessage, f.content, f.gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := EncryptPrivateMessage(keys, f.content, &wire.FramedContentAuthData{Signature: sig}, PadTo(64), nil)
	if err != nil {
		t.Fatal(err)
	}
	return pm
}

func TestTamperedCiphertextIsRejectedAndKeyKept(t *testing.T) {
	f := newFixture(t)
	pm := f.encrypt(t, f.keys())
	receiver := f.keys()
	bad := *pm
	bad.Ciphertext = append([]byte(nil), pm.Ciphertext...)
	bad.Ciphertext[len(bad.Ciphertext)-1] ^= 1
	// The sender data sample is the start of the ciphertext, so flipping
	// the last byte leaves sender data intact and breaks only the content.
	if _, err := DecryptPrivateMessage(receiver, &bad, nil, nil); !errors.Is(err, ErrContentDecryption) {
		t.Fatalf("tampered content: err = %v, want ErrContentDecryption", err)
	}
	if _, err := DecryptPrivateMessage(receiver, pm, nil, nil); err != nil {
		t.Errorf("genuine message after a forged one: %v", err)
	}
}

func TestTamperedSenderDataIsRejected(t *testing.T) {
	f := newFixture(t)
	pm := f.encrypt(t, f.keys())
	pm.EncryptedSenderData[0] ^= 1
	if _, err := DecryptPrivateMessage(f.keys(), pm, nil, nil); !errors.Is(err, ErrSenderDataDecryption) {
		t.Errorf("err = %v, want ErrSenderDataDecryption", err)
	}
}

func TestAuthenticatedDataIsBound(t *testing.T) {
	f := newFixture(t)
	pm := f.encrypt(t, f.keys())
	pm.AuthenticatedData = []byte("injected")
	if _, err := DecryptPrivateMessage(f.keys(), pm, nil, nil); !errors.Is(err, ErrContentDecryption) {
		t.Errorf("err = %v, want ErrContentDecryption", err)
	}
}

func TestCheckSenderRunsBeforeKeysAreUsed(t *testing.T) {
	f := newFixture(t)
	pm := f.encrypt(t, f.keys())
	receiver := f.keys()
	blank := errors.New("blank leaf")
	if _, err := DecryptPrivateMessage(receiver, pm, func(uint32) error { return blank }, nil); !errors.Is(err, blank) {
		t.Fatalf("err = %v, want the check's error", err)
	}
	if _, err := DecryptPrivateMessage(receiver, pm, nil, nil); err != nil {
		t.Errorf("after a refused sender the key must be intact: %v", err)
	}
}

func TestPaddingIsAppliedAndMustBeZero(t *testing.T) {
	f := newFixture(t)
	keys := f.keys()
	pm := f.encrypt(t, keys)
	// 64-byte padded content plus a 16-byte GCM tag.
	if len(pm.Ciphertext)%64 != 16 {
		t.Errorf("ciphertext length %d is not padded to 64", len(pm.Ciphertext))
	}
	// Decode content with non-zero padding directly.
	var pmc wire.PrivateMessageContent
	pmc.ContentType = wire.ContentApplication
	enc := codec.MustMarshal(&wire.PrivateMessageContent{ContentType: wire.ContentApplication, ApplicationData: []byte("x"),
		Auth: wire.FramedContentAuthData{Signature: []byte("s")}})
	if err := codec.Unmarshal(append(enc, 0, 0, 1), &pmc); err == nil {
		t.Error("content with non-zero padding was accepted")
	}
	if err := codec.Unmarshal(append(enc, 0, 0, 0), &pmc); err != nil || pmc.Padding != 3 {
		t.Errorf("zero padding: err = %v, padding %d", err, pmc.Padding)
	}
}

func TestPublicMessageMembershipTag(t *testing.T) {
	f := newFixture(t)
	c := *f.content
	c.ContentType = wire.ContentProposal
	c.ApplicationData = nil
	c.Proposal = &wire.Remove{Removed: 1}
	sig, err := Sign(cs, f.signer, wire.WireFormatPublicMessage, &c, f.gc, nil)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{5}, 32)
	pm, err := NewPublicMessage(cs, &c, &wire.FramedContentAuthData{Signature: sig}, key, f.gc)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyMembershipTag(cs, pm, key, f.gc); err != nil {
		t.Errorf("genuine tag: %v", err)
	}
	if err := VerifyMembershipTag(cs, pm, bytes.Repeat([]byte{6}, 32), f.gc); !errors.Is(err, ErrBadMembershipTag) {
		t.Errorf("wrong key: err = %v", err)
	}
	if err := VerifySignature(cs, f.signer.PublicKey(), AuthenticatedContentOf(pm), f.gc); err != nil {
		t.Errorf("signature: %v", err)
	}
	pm.Content.Epoch++
	if err := VerifySignature(cs, f.signer.PublicKey(), AuthenticatedContentOf(pm), f.gc); !errors.Is(err, ErrBadSignature) {
		t.Errorf("modified epoch: err = %v, want ErrBadSignature", err)
	}
}
