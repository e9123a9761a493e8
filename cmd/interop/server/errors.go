package server

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/parley-p2p/parley/mls/suite"
)

var (
	// ErrUnknownID reports a state, transaction, reinit or signer id the
	// server does not hold (never issued, or freed).
	ErrUnknownID = errors.New("interop: unknown id")
	// ErrBadRequest reports a request field that does not decode or does
	// not make sense (wrong message type, unknown proposal type, a member
	// identity not in the group).
	ErrBadRequest = errors.New("interop: bad request")
	// ErrNoPendingCommit reports HandlePendingCommit on a state with no
	// commit of its own staged.
	ErrNoPendingCommit = errors.New("interop: no pending commit")
	// ErrRemoved reports a commit that removed this member: there is no
	// next state to return.
	ErrRemoved = errors.New("interop: this member was removed by the commit")
)

// grpcError maps an error to a gRPC status: unknown ids are NotFound,
// malformed requests InvalidArgument, state mismatches FailedPrecondition,
// and everything the MLS stack rejects Aborted (the message or operation
// was refused; the states are unchanged). The message keeps the whole
// error chain.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Aborted
	switch {
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, ErrUnknownID):
		code = codes.NotFound
	case errors.Is(err, ErrBadRequest), errors.Is(err, suite.ErrUnsupportedSuite):
		code = codes.InvalidArgument
	case errors.Is(err, ErrNoPendingCommit), errors.Is(err, ErrRemoved):
		code = codes.FailedPrecondition
	}
	return status.Error(code, err.Error())
}
