package wire

import "errors"

var (
	// ErrUnknownProposalType reports a proposal type this package cannot
	// decode.
	ErrUnknownProposalType = errors.New("wire: unknown proposal type")
	// ErrInvalidStruct reports a struct that cannot be encoded because its
	// fields are inconsistent (for example a select with no value).
	ErrInvalidStruct = errors.New("wire: inconsistent struct")
)
