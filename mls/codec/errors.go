package codec

import (
	"errors"
	"fmt"
)

var (
	// ErrMalformed reports input that does not follow the encoding rules:
	// truncated, a non-minimal variable-length integer, a length that runs
	// past the input, an invalid enum value.
	ErrMalformed = errors.New("codec: malformed input")
	// ErrTrailingBytes reports input with bytes left after the value.
	ErrTrailingBytes = errors.New("codec: trailing bytes after value")
	// ErrVarintRange reports a length or integer too large for a
	// variable-length integer (more than 2^30-1).
	ErrVarintRange = errors.New("codec: value exceeds variable-length integer range")
)

func encodeError(err error) error {
	if errors.Is(err, ErrVarintRange) {
		return err
	}
	return fmt.Errorf("codec: encoding failed: %w", err)
}
