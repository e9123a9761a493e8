// Package framing implements MLS message framing and protection (RFC 9420,
// §6): content signatures, PublicMessage membership tags, PrivateMessage
// content and sender-data encryption with padding, and the transcript
// hashes and confirmation tag of commits (§8.2).
//
// The package knows messages and keys; it does not know group membership.
// Callers give it the serialized GroupContext, the epoch's keys and a way to
// check that a sender is a member.
package framing

import (
	"io"

	"github.com/parley-p2p/parley/mls/suite"
	"github.com/parley-p2p/parley/mls/wire"
)

// Sign computes the signature of content as sent in wire format wf
// (SignWithLabel over FramedContentTBS, §6.1). groupContext is the encoded
// GroupContext of the epoch, required for member and new_member_commit
// senders.
func Sign(cs suite.CipherSuite, key *suite.SignaturePrivateKey, wf wire.WireFormat, content *wire.FramedContent, groupContext []byte, rand io.Reader) ([]byte, error) {
	tbs, err := wire.FramedContentTBS(wf, content, groupContext)
	if err != nil {
		return nil, err
	}
	return cs.SignWithLabel(key, wire.FramedContentTBSLabel, tbs, rand)
}

// VerifySignature checks the signature of an AuthenticatedContent against
// the sender's signature public key (§6.1).
func VerifySignature(cs suite.CipherSuite, pub []byte, ac *wire.AuthenticatedContent, groupContext []byte) error {
	tbs, err := wire.FramedContentTBS(ac.WireFormat, &ac.Content, groupContext)
	if err != nil {
		return err
	}
	if err := cs.VerifyWithLabelRepeated(pub, wire.FramedContentTBSLabel, tbs, ac.Auth.Signature); err != nil {
		return ErrBadSignature
	}
	return nil
}

// NewPublicMessage frames signed content as a PublicMessage, adding the
// membership tag for member senders (§6.2). Application data may not be
// sent as a PublicMessage.
func NewPublicMessage(cs suite.CipherSuite, content *wire.FramedContent, auth *wire.FramedContentAuthData, membershipKey, groupContext []byte) (*wire.PublicMessage, error) {
	if content.ContentType == wire.ContentApplication {
		return nil, ErrApplicationInPublic
	}
	pm := &wire.PublicMessage{Content: *content, Auth: *auth}
	if content.Sender.Type == wire.SenderMember {
		tbm, err := wire.AuthenticatedContentTBM(content, auth, groupContext)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = cs.MAC(membershipKey, tbm)
	}
	return pm, nil
}

// VerifyMembershipTag checks the membership tag of a PublicMessage from a
// member (§6.2). Messages from other senders carry no tag.
func VerifyMembershipTag(cs suite.CipherSuite, pm *wire.PublicMessage, membershipKey, groupContext []byte) error {
	if pm.Content.Sender.Type != wire.SenderMember {
		return nil
	}
	tbm, err := wire.AuthenticatedContentTBM(&pm.Content, &pm.Auth, groupContext)
	if err != nil {
		return err
	}
	if !cs.VerifyMAC(membershipKey, tbm, pm.MembershipTag) {
		return ErrBadMembershipTag
	}
	return nil
}

// AuthenticatedContentOf returns the AuthenticatedContent of a
// PublicMessage.
func AuthenticatedContentOf(pm *wire.PublicMessage) *wire.AuthenticatedContent {
	return &wire.AuthenticatedContent{WireFormat: wire.WireFormatPublicMessage, Content: pm.Content, Auth: pm.Auth}
}

// ConfirmedTranscriptHash computes the confirmed transcript hash after a
// commit: Hash(interim_transcript_hash_before || ConfirmedTranscriptHashInput)
// (§8.2).
func ConfirmedTranscriptHash(cs suite.CipherSuite, interimBefore []byte, ac *wire.AuthenticatedContent) ([]byte, error) {
	if ac.Content.ContentType != wire.ContentCommit {
		return nil, ErrNotCommit
	}
	in, err := wire.ConfirmedTranscriptHashInput(ac.WireFormat, &ac.Content, ac.Auth.Signature)
	if err != nil {
		return nil, err
	}
	h := cs.NewHash()
	h.Write(interimBefore)
	h.Write(in)
	return h.Sum(nil), nil
}

// InterimTranscriptHash computes the interim transcript hash from the
// confirmed transcript hash and the commit's confirmation tag (§8.2).
func InterimTranscriptHash(cs suite.CipherSuite, confirmed, confirmationTag []byte) []byte {
	h := cs.NewHash()
	h.Write(confirmed)
	h.Write(wire.InterimTranscriptHashInput(confirmationTag))
	return h.Sum(nil)
}

// ConfirmationTag computes MAC(confirmation_key, confirmed_transcript_hash)
// (§6.1).
func ConfirmationTag(cs suite.CipherSuite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return cs.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks a confirmation tag in constant time.
func VerifyConfirmationTag(cs suite.CipherSuite, confirmationKey, confirmedTranscriptHash, tag []byte) error {
	if !cs.VerifyMAC(confirmationKey, confirmedTranscriptHash, tag) {
		return ErrBadConfirmationTag
	}
	return nil
}
