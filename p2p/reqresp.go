package p2p

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	msmux "github.com/multiformats/go-multistream"
)

// Request/response protocol, one exchange per stream:
//
//	requester -> responder: frame(request), then nothing until it closes
//	responder -> requester: frame(0x00 || data)*            data frames
//	                        frame(0x01)                      end, or
//	                        frame(0x02 || code || message)   error
//
// Frames are length-prefixed (see frame.go). The requester closes or resets
// the stream only when done, so the responder cancels a handler whose
// requester gave up. Both sides bound the frame size and the time; the requester also bounds the bytes of a whole
// response, and the responder the requests it serves at once per peer.

// protocolPrefix namespaces the caller's protocol names.
const protocolPrefix = "/parley/"

const (
	kindData  byte = 0
	kindEnd   byte = 1
	kindError byte = 2
)

const ioBuffer = 32 << 10

// errorGrace is how long a responder's stream outlives its handler's
// deadline, to send the error frame.
const errorGrace = 2 * time.Second

// Handler serves one request from peer from. It sends zero or more response
// frames with w.Write; returning an error sends the requester a
// RemoteError carrying the error's text (at most 256 bytes of it), so it
// must not hold secrets. ctx ends at the stream deadline or when the node
// closes.
type Handler func(ctx context.Context, from peer.ID, req []byte, w ResponseWriter) error

// ResponseWriter sends response frames to the requester.
type ResponseWriter interface {
	// Write sends one frame. It fails with ErrFrameTooLarge or
	// ErrStreamTooLarge past the node's StreamLimits.
	Write(frame []byte) error
}

type reqResp struct {
	n        *Node
	mu       sync.Mutex
	handlers map[protocol.ID]Handler
	active   map[peer.ID]int
	started  bool
}

func newReqResp(n *Node) *reqResp {
	return &reqResp{n: n, handlers: make(map[protocol.ID]Handler), active: make(map[peer.ID]int)}
}

// protocolID checks a protocol name such as "keypackage/1" and returns its
// libp2p protocol ID.
func protocolID(name string) (protocol.ID, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, " \n\r\t") {
		return "", fmt.Errorf("%w: %q", ErrBadProtocol, name)
	}
	return protocol.ID(protocolPrefix + name), nil
}

// Handle serves requests for the protocol name (for example
// "keypackage/1"; it becomes "/parley/keypackage/1"), replacing any previous
// handler. It may be called before Start.
func (n *Node) Handle(name string, h Handler) error {
	pid, err := protocolID(name)
	if err != nil {
		return err
	}
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrBadOption)
	}
	rr := n.rr
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.handlers[pid] = h
	if rr.started {
		n.host.SetStreamHandler(pid, rr.serve(h))
	}
	return nil
}

// start installs the handlers registered before Start.
func (rr *reqResp) start() {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.started = true
	for pid, h := range rr.handlers {
		rr.n.host.SetStreamHandler(pid, rr.serve(h))
	}
}

func (rr *reqResp) acquire(p peer.ID) bool {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.active[p] >= rr.n.streams.PerPeer {
		return false
	}
	rr.active[p]++
	return true
}

func (rr *reqResp) release(p peer.ID) {
	rr.mu.Lock()
	defer rr.mu.Unlock()
	if rr.active[p]--; rr.active[p] <= 0 {
		delete(rr.active, p)
	}
}

func (rr *reqResp) serve(h Handler) network.StreamHandler {
	return func(s network.Stream) {
		lim := rr.n.streams
		from := s.Conn().RemotePeer()
		// The handler's context ends at deadline; the stream lives a little
		// longer so that a timed-out handler's error still reaches the
		// requester.
		deadline := time.Now().Add(lim.Timeout)
		s.SetDeadline(deadline.Add(errorGrace))
		bw := bufio.NewWriterSize(s, ioBuffer)
		log := rr.n.log.With("peer", from, "protocol", s.Protocol())
		if !rr.acquire(from) {
			log.Debug("request refused: peer busy")
			sendError(s, bw, codeBusy, "too many concurrent requests")
			return
		}
		defer rr.release(from)
		br := bufio.NewReaderSize(s, ioBuffer)
		req, _, err := readFrame(br, lim.MaxFrame)
		if err != nil {
			log.Debug("bad request", "err", err)
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				sendError(s, bw, codeTooLarge, "request frame too large")
			case errors.Is(err, ErrNonMinimalFrame), errors.Is(err, ErrMalformedFrame):
				sendError(s, bw, codeBadFrame, "malformed request frame")
			default:
				s.Reset()
			}
			return
		}
		ctx, cancel := context.WithDeadline(rr.n.ctx, deadline)
		defer cancel()
		// The requester keeps its side open until it has the whole response,
		// so a read that returns means it gave up (or broke the protocol):
		// the handler is told through ctx.
		go func() {
			br.ReadByte()
			cancel()
		}()
		w := &responseWriter{bw: bw, maxFrame: lim.MaxFrame, left: lim.MaxStream}
		if err := h(ctx, from, req, w); err != nil {
			log.Debug("handler failed", "err", err)
			code := uint8(codeHandler)
			if ctx.Err() != nil || isTimeout(err) {
				code = codeTimeout
			}
			sendError(s, bw, code, err.Error())
			return
		}
		if err := writeFrame(bw, []byte{kindEnd}); err != nil {
			s.Reset()
			return
		}
		s.Close()
	}
}

// sendError sends an error frame and closes the stream.
func sendError(s network.Stream, bw *bufio.Writer, code uint8, msg string) {
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	if err := writeFrame(bw, []byte{kindError, code}, []byte(msg)); err != nil {
		s.Reset()
		return
	}
	s.Close()
}

type responseWriter struct {
	bw       *bufio.Writer
	maxFrame int
	left     int64
}

func (w *responseWriter) Write(frame []byte) error {
	if len(frame) > w.maxFrame {
		return fmt.Errorf("%w: %d > %d bytes", ErrFrameTooLarge, len(frame), w.maxFrame)
	}
	size := int64(len(frame) + 1 + maxFrameHeader)
	if size > w.left {
		return ErrStreamTooLarge
	}
	w.left -= size
	return writeFrame(w.bw, []byte{kindData}, frame)
}

// Request sends req to peer to on protocol name and returns the single
// response frame. It is the way to send a payload too large for gossip
// (up to StreamLimits.MaxFrame) to one peer.
func (n *Node) Request(ctx context.Context, to peer.ID, name string, req []byte) ([]byte, error) {
	var resp []byte
	count := 0
	err := n.RequestEach(ctx, to, name, req, func(frame []byte) error {
		if count++; count > 1 {
			return ErrExtraResponse
		}
		resp = frame
		return nil
	})
	if err != nil {
		return nil, err
	}
	if count == 0 {
		return nil, ErrNoResponse
	}
	return resp, nil
}

// RequestEach sends req to peer to on protocol name and calls fn with each
// response frame, in order. An error from fn aborts the exchange and is
// returned. The exchange is bounded by ctx and StreamLimits.Timeout.
func (n *Node) RequestEach(ctx context.Context, to peer.ID, name string, req []byte, fn func(frame []byte) error) error {
	return n.requestEach(ctx, to, name, req, false, fn)
}

// RequestEachReused is RequestEach with every response frame read into
// the same buffer: a frame is valid only until fn returns. It spares a
// large stream an allocation per frame (file chunks: fn decrypts each
// into a buffer of its own).
func (n *Node) RequestEachReused(ctx context.Context, to peer.ID, name string, req []byte, fn func(frame []byte) error) error {
	return n.requestEach(ctx, to, name, req, true, fn)
}

func (n *Node) requestEach(ctx context.Context, to peer.ID, name string, req []byte, reuse bool, fn func(frame []byte) error) error {
	if err := n.running(); err != nil {
		return err
	}
	pid, err := protocolID(name)
	if err != nil {
		return err
	}
	lim := n.streams
	if len(req) > lim.MaxFrame {
		return fmt.Errorf("%w: request %d > %d bytes", ErrFrameTooLarge, len(req), lim.MaxFrame)
	}
	ctx, cancel := context.WithTimeout(ctx, lim.Timeout)
	defer cancel()
	s, err := n.host.NewStream(ctx, to, pid)
	if err != nil {
		return streamError(ctx, fmt.Errorf("p2p: open %s to %s: %w", pid, to, err))
	}
	dl, _ := ctx.Deadline()
	s.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if err := writeFrame(bufio.NewWriterSize(s, ioBuffer), req); err != nil {
		s.Reset()
		return streamError(ctx, fmt.Errorf("p2p: send request: %w", err))
	}
	// The write side stays open: closing it tells the responder we are gone.
	if err := readResponse(bufio.NewReaderSize(s, ioBuffer), lim, reuse, fn); err != nil {
		s.Reset()
		return streamError(ctx, err)
	}
	s.Close()
	return nil
}

// readResponse reads response frames until the end frame, calling fn
// with each data frame; with reuse every frame is read into the buffer
// of the one before.
func readResponse(r *bufio.Reader, lim StreamLimits, reuse bool, fn func([]byte) error) error {
	var total int64
	var buf []byte
	for {
		f, size, err := readFrameInto(r, lim.MaxFrame+1, buf)
		if reuse {
			buf = f[:0]
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: response ended early", ErrMalformedFrame)
			}
			return err
		}
		if total += int64(size); total > lim.MaxStream {
			return fmt.Errorf("%w: over %d bytes", ErrStreamTooLarge, lim.MaxStream)
		}
		if len(f) == 0 {
			return fmt.Errorf("%w: empty response frame", ErrMalformedFrame)
		}
		switch f[0] {
		case kindData:
			if err := fn(f[1:]); err != nil {
				return err
			}
		case kindEnd:
			if len(f) != 1 {
				return fmt.Errorf("%w: trailing bytes in end frame", ErrMalformedFrame)
			}
			return nil
		case kindError:
			if len(f) < 2 || len(f) > 2+maxErrorMessage {
				return fmt.Errorf("%w: bad error frame", ErrMalformedFrame)
			}
			return &RemoteError{Code: f[1], Message: strings.ToValidUTF8(string(f[2:]), "?")}
		default:
			return fmt.Errorf("%w: frame kind %d", ErrMalformedFrame, f[0])
		}
	}
}

// streamError maps transport failures to the package's errors.
func streamError(ctx context.Context, err error) error {
	var remote *RemoteError
	switch {
	case errors.As(err, &remote):
		return err
	case errors.Is(err, msmux.ErrNotSupported[protocol.ID]{}):
		return fmt.Errorf("%w: %w", ErrNoHandler, err)
	case errors.Is(ctx.Err(), context.DeadlineExceeded), isTimeout(err):
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// isTimeout reports a deadline error from any transport.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
