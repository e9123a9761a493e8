package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// errAuthFailed ends a connection that sent a wrong token.
var errAuthFailed = errors.New("wrong token")

// conn is one client connection of a server. One goroutine (serve) reads
// the requests; each request runs in its own goroutine, at most
// maxInFlight at once; writes of whole lines are serialized by wmu.
type conn struct {
	s     *Server
	nc    net.Conn
	r     *bufio.Reader
	log   *slog.Logger
	token string // "" when the listener needs none

	ctx    context.Context // ends with the connection
	cancel context.CancelFunc

	wmu sync.Mutex

	// dmu orders the read deadline changes of auth and stopReading.
	dmu      sync.Mutex
	stopping atomic.Bool

	// Owned by the serve goroutine.
	authed     bool
	subscribed bool

	handlers sync.WaitGroup // running requests and the event pump
	inFlight chan struct{}
}

func newConn(s *Server, nc net.Conn, token string, id uint64) *conn {
	ctx, cancel := context.WithCancel(s.ctx)
	log := s.log.With("conn", id)
	if token != "" {
		log = log.With("remote", nc.RemoteAddr().String())
	}
	return &conn{
		s:        s,
		nc:       nc,
		r:        bufio.NewReaderSize(nc, 64<<10),
		log:      log,
		token:    token,
		authed:   token == "",
		ctx:      ctx,
		cancel:   cancel,
		inFlight: make(chan struct{}, maxInFlight),
	}
}

// serve reads and answers requests until the client closes its side, the
// connection fails or the server stops.
func (c *conn) serve() {
	defer c.s.wg.Done()
	defer c.s.untrack(c)
	c.log.Debug("api: connection opened")
	if !c.authed {
		c.dmu.Lock()
		if !c.stopping.Load() {
			c.nc.SetReadDeadline(time.Now().Add(authTimeout))
		}
		c.dmu.Unlock()
	}
	err := c.readLoop()
	// A client that has sent all its requests (EOF) and a server that
	// stops gracefully still get their answers; an event stream ends at
	// once, and so does everything on a broken connection.
	if c.subscribed || (!errors.Is(err, io.EOF) && !c.stopping.Load()) {
		c.cancel()
	}
	c.handlers.Wait()
	c.cancel()
	c.nc.Close()
	switch {
	case err == nil, errors.Is(err, io.EOF), c.stopping.Load(), errors.Is(err, net.ErrClosed):
		c.log.Debug("api: connection closed")
	default:
		c.log.Debug("api: connection closed", "err", err)
	}
}

// stopReading makes serve read no further request: the server is
// stopping.
func (c *conn) stopReading() {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	c.stopping.Store(true)
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) readLoop() error {
	for {
		line, err := readLine(c.r, MaxRequestSize)
		if c.stopping.Load() {
			return nil
		}
		if errors.Is(err, errLineTooLong) {
			c.log.Debug("api: request line too long")
			c.replyError(0, fmt.Errorf("%w: request line longer than %d bytes", ErrBadRequest, MaxRequestSize))
			continue
		}
		if err != nil {
			return err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		req, err := decodeRequest(line)
		if err != nil {
			c.log.Debug("api: bad request", "err", err) // names no more than a field of the line
			c.replyError(req.ID, err)
			continue
		}
		if err := c.dispatch(req); err != nil {
			return err
		}
	}
}

// dispatch answers auth and subscribe at once, since they change the
// connection, and starts any other method in its own goroutine.
func (c *conn) dispatch(req request) error {
	switch {
	case req.Method == MethodAuth:
		return c.auth(req)
	case !c.authed:
		c.replyError(req.ID, fmt.Errorf(`%w: send the token first: {"id":1,"method":"auth","params":{"token":"..."}}`, ErrUnauthorized))
		return nil
	case c.subscribed:
		c.replyError(req.ID, fmt.Errorf("%w: this connection is an event stream; open another connection for requests", ErrBadRequest))
		return nil
	case req.Method == MethodSubscribe:
		c.subscribe(req)
		return nil
	}
	h, ok := methods[req.Method]
	if !ok {
		c.replyError(req.ID, fmt.Errorf("%w %q", ErrUnknownMethod, req.Method))
		return nil
	}
	select {
	case c.inFlight <- struct{}{}:
	case <-c.ctx.Done():
		return c.ctx.Err()
	}
	if c.stopping.Load() {
		<-c.inFlight
		return nil
	}
	c.handlers.Add(1)
	go func() {
		defer c.handlers.Done()
		defer func() { <-c.inFlight }()
		c.run(req, h)
	}()
	return nil
}

// run runs one request and writes its response.
func (c *conn) run(req request, h handler) {
	start := time.Now()
	var result any
	err := c.safely(req.Method, func() error {
		var err error
		result, err = h(c.ctx, c.s.backend, req.Params)
		return err
	})
	if err != nil {
		c.replyError(req.ID, err)
		c.log.Debug("api: request failed", "method", req.Method, "code", ErrorCode(err), "duration", time.Since(start))
		return
	}
	c.replyResult(req.ID, req.Method, result)
	c.log.Debug("api: request done", "method", req.Method, "duration", time.Since(start))
}

// safely calls f, turning a panic (a Backend bug) into an internal error
// so that one bad request does not take the daemon down.
func (c *conn) safely(method string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("api: backend panicked", "method", method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error in %s", method)
		}
	}()
	return f()
}

// auth checks a client's token. A wrong token ends the connection; on the
// unix socket, where the file mode does the checking, any token is fine.
func (c *conn) auth(req request) error {
	var p authParams
	if err := decodeParams(req.Method, req.Params, &p); err != nil {
		c.replyError(req.ID, err)
		return nil
	}
	if c.token == "" {
		c.replyResult(req.ID, req.Method, okResult{})
		return nil
	}
	if !tokenEqual(p.Token, c.token) {
		c.log.Warn("api: TCP client sent a wrong token")
		c.replyError(req.ID, fmt.Errorf("%w: wrong token", ErrUnauthorized))
		return errAuthFailed
	}
	c.dmu.Lock()
	if !c.stopping.Load() {
		c.nc.SetReadDeadline(time.Time{})
	}
	c.dmu.Unlock()
	c.authed = true
	c.replyResult(req.ID, req.Method, okResult{})
	return nil
}

// subscribe turns the connection into an event stream.
func (c *conn) subscribe(req request) {
	var p subscribeParams
	if err := decodeParams(req.Method, req.Params, &p); err != nil {
		c.replyError(req.ID, err)
		return
	}
	var events <-chan Event
	err := c.safely(req.Method, func() error {
		var err error
		events, err = c.s.backend.Subscribe(c.ctx, p.Group)
		return err
	})
	if err != nil {
		c.replyError(req.ID, err)
		return
	}
	c.subscribed = true
	c.replyResult(req.ID, req.Method, okResult{})
	c.log.Debug("api: event stream started")
	c.handlers.Add(1)
	go c.pump(events)
}

// pump writes events until the connection ends. When the Backend closes
// the stream, it closes the connection so the client sees the end.
func (c *conn) pump(events <-chan Event) {
	defer c.handlers.Done()
	for {
		select {
		case <-c.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				c.nc.Close()
				return
			}
			if err := c.write(eventLine{Event: &ev}); err != nil {
				return
			}
		}
	}
}

func (c *conn) replyResult(id uint64, method string, result any) {
	raw, err := json.Marshal(result)
	if err != nil {
		c.replyError(id, fmt.Errorf("encoding the %s result: %w", method, err))
		return
	}
	c.write(response{ID: id, Result: raw})
}

func (c *conn) replyError(id uint64, err error) {
	c.write(response{ID: id, Error: wireError(err)})
}

// write writes v as one line. A failed or timed-out write closes the
// connection: the client is gone or does not read.
func (c *conn) write(v any) error {
	line, err := json.Marshal(v)
	if err != nil {
		return err
	}
	line = append(line, '\n')
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := c.nc.Write(line); err != nil {
		c.nc.Close()
		return err
	}
	return nil
}
