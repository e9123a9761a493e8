package framing

import "errors"

var (
	// ErrBadSignature reports a content signature that does not verify.
	ErrBadSignature = errors.New("framing: invalid content signature")
	// ErrBadMembershipTag reports a PublicMessage whose membership tag does
	// not verify.
	ErrBadMembershipTag = errors.New("framing: invalid membership tag")
	// ErrBadConfirmationTag reports a commit whose confirmation tag does
	// not verify.
	ErrBadConfirmationTag = errors.New("framing: invalid confirmation tag")
	// ErrApplicationInPublic reports an attempt to send application data
	// as a PublicMessage, which §6.2 forbids.
	ErrApplicationInPublic = errors.New("framing: application data cannot be sent as a PublicMessage")
	// ErrNotMember reports a PrivateMessage from a sender that is not a
	// member.
	ErrNotMember = errors.New("framing: only members send PrivateMessages")
	// ErrNotCommit reports a transcript hash update with content that is
	// not a commit.
	ErrNotCommit = errors.New("framing: content is not a commit")
	// ErrSenderDataDecryption reports sender data that does not decrypt.
	ErrSenderDataDecryption = errors.New("framing: sender data decryption failed")
	// ErrMalformedSenderData reports sender data that does not decode.
	ErrMalformedSenderData = errors.New("framing: malformed sender data")
	// ErrContentDecryption reports PrivateMessage content that does not
	// decrypt.
	ErrContentDecryption = errors.New("framing: content decryption failed")
	// ErrMalformedContent reports decrypted content that does not decode or
	// has non-zero padding.
	ErrMalformedContent = errors.New("framing: malformed private message content")
)
