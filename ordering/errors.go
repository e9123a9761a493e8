package ordering

import "errors"

var (
	// ErrMalformedEnvelope reports an envelope that does not decode.
	ErrMalformedEnvelope = errors.New("ordering: malformed envelope")
	// ErrUnknownEpoch reports a message for an epoch this member does not
	// hold (yet, or any more).
	ErrUnknownEpoch = errors.New("ordering: unknown epoch")
	// ErrExpiredEpoch reports a message for an epoch beyond retention.
	ErrExpiredEpoch = errors.New("ordering: epoch beyond retention")
	// ErrBadHead reports a head that does not verify.
	ErrBadHead = errors.New("ordering: invalid head")
	// ErrDuplicate reports a message already seen.
	ErrDuplicate = errors.New("ordering: duplicate message")
	// ErrNotMember reports an operation by a member no longer in the group.
	ErrNotMember = errors.New("ordering: not a member of the group")
	// ErrUnknownMember reports a removal of someone who is not a member.
	ErrUnknownMember = errors.New("ordering: no such member")
	// ErrAlreadyMember reports an add of a client that is a member, or
	// whose add this member asked for already and is not done yet.
	ErrAlreadyMember = errors.New("ordering: already a member, or being added")
	// ErrSenderRemoved reports an application message from a member that
	// is no longer in the group at this member's canonical epoch: it may
	// have been sent after its removal with the old epoch's keys.
	ErrSenderRemoved = errors.New("ordering: sender is no longer a member")
	// ErrMalformedRequest reports a sync request or response that does not
	// decode.
	ErrMalformedRequest = errors.New("ordering: malformed sync message")
	// ErrUnauthenticated reports a catch-up request that is not signed by
	// a member of an epoch held here, or is bound to other peers.
	ErrUnauthenticated = errors.New("ordering: request not from a member")
	// ErrStaleRequest reports a catch-up request whose time is too far
	// from the responder's clock.
	ErrStaleRequest = errors.New("ordering: stale request")
	// ErrExternalCommit reports an external commit that is not a
	// member's resync of its own leaf.
	ErrExternalCommit = errors.New("ordering: external commit is not a member's resync")
	// ErrMalformedState reports saved loop state that does not decode.
	ErrMalformedState = errors.New("ordering: malformed saved state")
)
