package p2p

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Callers branch on them with errors.Is.
var (
	ErrNotStarted      = errors.New("p2p: node not started")
	ErrAlreadyStarted  = errors.New("p2p: node already started")
	ErrClosed          = errors.New("p2p: node closed")
	ErrNoIdentity      = errors.New("p2p: no identity key")
	ErrBadOption       = errors.New("p2p: bad option")
	ErrTopicJoined     = errors.New("p2p: topic already joined")
	ErrTopicClosed     = errors.New("p2p: topic closed")
	ErrPayloadTooLarge = errors.New("p2p: payload too large for gossip")
	ErrNoDHT           = errors.New("p2p: DHT disabled")
	ErrBadProtocol     = errors.New("p2p: bad protocol name")
	ErrFrameTooLarge   = errors.New("p2p: frame too large")
	ErrStreamTooLarge  = errors.New("p2p: stream too large")
	ErrNonMinimalFrame = errors.New("p2p: non-minimal frame length")
	ErrMalformedFrame  = errors.New("p2p: malformed frame")
	ErrTimeout         = errors.New("p2p: request timed out")
	ErrPeerBusy        = errors.New("p2p: peer busy")
	ErrNoHandler       = errors.New("p2p: peer does not support protocol")
	ErrNoResponse      = errors.New("p2p: response has no frame")
	ErrExtraResponse   = errors.New("p2p: response has more than one frame")
	ErrBadPeerRecord   = errors.New("p2p: malformed peer record")
	ErrAddressInUse    = errors.New("p2p: listen address already in use")
)

// Error codes carried in an error frame of a response.
const (
	codeHandler  uint8 = 1 // the handler returned an error
	codeBusy     uint8 = 2 // too many concurrent requests from this peer
	codeTooLarge uint8 = 3 // the request frame exceeded the responder's limit
	codeBadFrame uint8 = 4 // the request frame was malformed
	codeTimeout  uint8 = 5 // the handler ran out of time
)

// maxErrorMessage bounds the text a responder sends back in an error frame.
const maxErrorMessage = 256

// RemoteError is the error a responder sent back instead of a response.
// errors.Is maps its code to ErrPeerBusy, ErrFrameTooLarge, ErrMalformedFrame
// or ErrTimeout where one applies.
type RemoteError struct {
	Code    uint8
	Message string
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("p2p: remote error %d: %s", e.Code, e.Message)
}

// Is reports whether the remote code corresponds to target.
func (e *RemoteError) Is(target error) bool {
	switch e.Code {
	case codeBusy:
		return target == ErrPeerBusy
	case codeTooLarge:
		return target == ErrFrameTooLarge
	case codeBadFrame:
		return target == ErrMalformedFrame
	case codeTimeout:
		return target == ErrTimeout
	}
	return false
}
