package secrettree

import "errors"

var (
	// ErrLeafOutOfRange reports a leaf index outside the tree.
	ErrLeafOutOfRange = errors.New("secrettree: leaf index out of range")
	// ErrSecretConsumed reports a generation whose key was already used or
	// deleted (a replay, or a message older than the out-of-order window).
	ErrSecretConsumed = errors.New("secrettree: key already consumed or expired")
	// ErrTooFarAhead reports a generation beyond the maximum forward distance.
	ErrTooFarAhead = errors.New("secrettree: generation too far ahead")
	// ErrGenerationExhausted reports a ratchet that has used every generation.
	ErrGenerationExhausted = errors.New("secrettree: ratchet generations exhausted")
)
