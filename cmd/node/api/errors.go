package api

import (
	"context"
	"errors"
)

// Errors of the transport itself. The Backend errors are in backend.go.
var (
	// ErrNotRunning is returned by Dial and DialTCP when no daemon
	// answers at the address; the error says where it looked.
	ErrNotRunning = errors.New("parley daemon is not running")
	// ErrAlreadyRunning is returned by Server.ListenUnix when another
	// live server answers on the socket.
	ErrAlreadyRunning = errors.New("another parley daemon is running")
	// ErrBadRequest is a line that is not a request: malformed JSON, a
	// line over MaxRequestSize, a request on a connection that has
	// become an event stream.
	ErrBadRequest = errors.New("bad request")
	// ErrUnknownMethod is a request for a method the server does not
	// have.
	ErrUnknownMethod = errors.New("unknown method")
	// ErrClosed is returned by Client methods once the connection to
	// the daemon is closed, by Close or by the daemon.
	ErrClosed = errors.New("connection to the parley daemon closed")
)

// CodeInternal is the code of an error that maps to no sentinel; its
// message is all there is.
const CodeInternal = "internal"

// errorCodes maps the sentinel errors to their stable wire codes. The
// first sentinel an error matches names its code.
var errorCodes = []struct {
	code string
	err  error
}{
	{"not_found", ErrNotFound},
	{"ambiguous", ErrAmbiguous},
	{"bad_code", ErrBadCode},
	{"not_member", ErrNotMember},
	{"damaged", ErrDamaged},
	{"exists", ErrExists},
	{"invalid", ErrInvalid},
	{"unavailable", ErrUnavailable},
	{"unauthorized", ErrUnauthorized},
	{"bad_request", ErrBadRequest},
	{"unknown_method", ErrUnknownMethod},
	{"canceled", context.Canceled},
	{"deadline_exceeded", context.DeadlineExceeded},
}

// ErrorCode returns the wire code of err: the code of the first sentinel
// it matches, or CodeInternal.
func ErrorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return CodeInternal
}

// Error is an error as the daemon returned it. It unwraps to the
// sentinel its code names, so errors.Is(err, ErrNotFound) holds for an
// error the Backend returned as ErrNotFound.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code
	}
	return e.Message
}

// Unwrap returns the sentinel of e's code, or nil for an unknown or
// internal code.
func (e *Error) Unwrap() error {
	for _, c := range errorCodes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}

// wireError converts a Backend or protocol error to its wire form.
func wireError(err error) *Error {
	return &Error{Code: ErrorCode(err), Message: err.Error()}
}
