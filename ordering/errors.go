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
	// ErrMalformedRequest reports a sync request or response that does not
	// decode.
	ErrMalformedRequest = errors.New("ordering: malformed sync message")
	// ErrMalformedState reports saved loop state that does not decode.
	ErrMalformedState = errors.New("ordering: malformed saved state")
)
